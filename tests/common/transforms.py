"""torchvision-style transforms for tests, where torchvision does not import (its PyPI wheel for
this torch is a CUDA build): the same call conventions (PIL or HWC uint8 numpy in, CHW float
tensors out; compose them with ``tests.common.loader.Compose``), written from torchvision's
documented semantics. Module level, so worker processes can import them."""

import numpy as np
import torch


class Resize:
    """PIL image -> PIL image of (height, width), bilinear."""

    def __init__(self, size):
        self.size = tuple(size)

    def __call__(self, im):
        from PIL import Image

        return im.resize((self.size[1], self.size[0]), Image.BILINEAR)


class CenterCrop:
    """PIL image or HWC array -> the centred (height, width) part (torchvision rounds the offset)."""

    def __init__(self, size):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, x):
        h, w = (x.size[1], x.size[0]) if hasattr(x, "size") and not isinstance(x, np.ndarray) else x.shape[:2]
        th, tw = self.size
        top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
        if isinstance(x, np.ndarray):
            return x[top:top + th, left:left + tw]
        return x.crop((left, top, left + tw, top + th))


class ToTensor:
    """PIL image or HWC uint8 array -> CHW float32 tensor in [0, 1]."""

    def __call__(self, x):
        arr = np.asarray(x.convert("RGB")) if not isinstance(x, np.ndarray) else x
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float().div(255)


class Normalize:
    def __init__(self, mean, std):
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __call__(self, t):
        return (t - self.mean) / self.std
