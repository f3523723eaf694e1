"""Transforms the loader can push into the decoder.

``RandomResizedCrop`` is both

* a plain per-sample transform: ``t(img)`` on an (H, W[, C]) numpy array returns a numpy array,
  on a PIL image returns a PIL image. Parameters are sampled with torchvision's algorithm
  (10 attempts at a random area/aspect ratio, then a centre-crop fallback), the resize is
  Pillow's antialiased BILINEAR (``img.crop(box).resize(size, BILINEAR)``), then an optional
  horizontal flip;
* a decode hint: the loader detects ``isinstance(t, RandomResizedCrop)`` (or a list/Compose
  whose first element is one), calls ``t.plan(height, width, rng)`` per sample, or
  ``t.plan_many(shapes, rng)``, and decodes straight to ``t.size`` with the fused
  crop + DCT-scale kernel (``t.decode(buffers, ...)`` does all of it).

The fused JPEG path is not bit-exact with decode -> crop -> resize when the crop is at least
twice the target on both sides: it decodes at the smallest DCT scale (1/8, 1/4 or 1/2) that
still covers the target, then resizes; smaller crops are decoded at full size and match the
resize of a full decode within 1. See tests/unit/test_crop_scale.py
for the measured difference. Numpy arrays with 2 or 4 channels are taken as LA / RGBA (alpha
last) and resampled with premultiplied alpha like ``PIL.Image.resize``; the fused decode does the
same for PNG, while 4-channel (CMYK) JPEGs are resampled channel by channel, as Pillow does.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import random as dl_random

__all__ = ["RandomResizedCrop"]


def _pair(size, what="size"):
    if isinstance(size, numbers.Integral):
        size = (int(size), int(size))
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an int or a (height, width) pair, got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"{what} must be positive, got {size!r}")
    return h, w


def _interp_name(interpolation) -> str:
    name = getattr(interpolation, "value", interpolation)   # torchvision InterpolationMode
    if isinstance(name, int):                                # PIL.Image.BILINEAR == 2
        name = {2: "bilinear"}.get(name, str(name))
    name = str(name).lower().rsplit(".", 1)[-1]
    if name != "bilinear":
        raise ValueError(f"RandomResizedCrop supports interpolation='bilinear' only, got {interpolation!r}")
    return name


class RandomResizedCrop:
    """Crop a random area/aspect-ratio box and resize it to ``size`` (torchvision semantics).

    Args:
        size: int or (height, width) of the output.
        scale: (min, max) fraction of the image area of the crop, before aspect adjustment.
        ratio: (min, max) aspect ratio (width / height) of the crop, sampled log-uniformly.
        hflip: False, True (p = 0.5), or a probability of a horizontal flip after the resize.
        interpolation: "bilinear" (also PIL.Image.BILINEAR / InterpolationMode.BILINEAR).
        seed: seed of the generator used when ``plan``/``__call__`` get no ``rng`` outside the
            loader. Inside the loader (fused or not, in the calling process or a worker) the draws
            come from the batch's own stream, seeded by (epoch, rank, batch), so every batch's
            boxes and flips are the same after a resume (``deeplake_loader.random``).
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip=False,
                 interpolation="bilinear", seed=None):
        self.size = _pair(size)
        s0, s1 = (float(v) for v in scale)
        r0, r1 = (float(v) for v in ratio)
        if not (0 < s0 <= s1):
            raise ValueError(f"scale must satisfy 0 < min <= max, got {scale!r}")
        if not (0 < r0 <= r1):
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio!r}")
        self.scale = (s0, s1)
        self.ratio = (r0, r1)
        p = 0.5 if hflip is True else (0.0 if hflip is False else float(hflip))
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"hflip must be a bool or a probability in [0, 1], got {hflip!r}")
        self.hflip = p
        self.interpolation = _interp_name(interpolation)
        self._rng = np.random.default_rng(seed)

    def __repr__(self):
        return (f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio}, "
                f"hflip={self.hflip}, interpolation='{self.interpolation}')")

    # ---- parameters ---------------------------------------------------------------------------

    def plan(self, height: int, width: int, rng=None):
        """``(y, x, h, w, flip)`` for an image of ``height`` x ``width`` (torchvision's
        RandomResizedCrop.get_params, then a flip draw when hflip > 0)."""
        if rng is None:  # inside the loader: the batch's own stream (random.batch_scope), so resumes repeat it
            scoped = dl_random.scoped_generator()
            rng = self._rng if scoped is None else scoped
        height, width = int(height), int(width)
        if height < 1 or width < 1:
            raise ValueError(f"cannot crop an image of size {height}x{width}")
        area = height * width
        lr0, lr1 = math.log(self.ratio[0]), math.log(self.ratio[1])
        box = None
        for _ in range(10):
            target = area * rng.uniform(self.scale[0], self.scale[1])
            aspect = math.exp(rng.uniform(lr0, lr1))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                y = int(rng.integers(0, height - h + 1))
                x = int(rng.integers(0, width - w + 1))
                box = (y, x, h, w)
                break
        if box is None:                              # centre crop at the nearest allowed ratio
            in_ratio = width / height
            if in_ratio < self.ratio[0]:
                w, h = width, int(round(width / self.ratio[0]))
            elif in_ratio > self.ratio[1]:
                h, w = height, int(round(height * self.ratio[1]))
            else:
                h, w = height, width
            h, w = max(1, min(h, height)), max(1, min(w, width))
            box = ((height - h) // 2, (width - w) // 2, h, w)
        flip = bool(self.hflip > 0 and rng.random() < self.hflip)
        return box + (flip,)

    def plan_many(self, shapes, rng=None):
        """Boxes (B, 4) int64 ``(y, x, h, w)`` and flips (B,) uint8 for (height, width[, ...]) shapes."""
        boxes = np.empty((len(shapes), 4), np.int64)
        flips = np.empty(len(shapes), np.uint8)
        for i, s in enumerate(shapes):
            *box, flip = self.plan(s[0], s[1], rng)
            boxes[i] = box
            flips[i] = flip
        return boxes, flips

    # ---- per-sample transform ------------------------------------------------------------------

    def apply(self, img, y, x, h, w, flip=False):
        """Crop ``(y, x, h, w)``, resize to ``size`` (Pillow BILINEAR), flip if asked."""
        th, tw = self.size
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - Pillow is a dependency
            Image = None
        if Image is not None and isinstance(img, Image.Image):
            out = img.crop((x, y, x + w, y + h)).resize((tw, th), Image.BILINEAR)
            return out.transpose(Image.FLIP_LEFT_RIGHT) if flip else out
        arr = np.asarray(img)
        if arr.ndim not in (2, 3):
            raise ValueError(f"RandomResizedCrop expects an (H, W) or (H, W, C) array, got shape {arr.shape}")
        squeeze = arr.ndim == 2
        a3 = arr[..., None] if squeeze else arr
        if not (0 <= y and 0 <= x and h >= 1 and w >= 1 and y + h <= a3.shape[0] and x + w <= a3.shape[1]):
            raise ValueError(f"crop box (y={y}, x={x}, h={h}, w={w}) outside an image of shape {arr.shape}")
        if a3.dtype == np.uint8:
            from deeplake_loader._kernels.decode import _resample_bilinear_py

            out = _resample_bilinear_py(np.ascontiguousarray(a3), (y, x, y + h, x + w), (th, tw), bool(flip),
                                        a3.shape[2] in (2, 4))
        else:
            out = self._resize_float(a3[y:y + h, x:x + w], th, tw, flip)
        return out[..., 0] if squeeze else out

    @staticmethod
    def _resize_float(crop, th, tw, flip):
        """Non-uint8 arrays: Pillow's 32-bit float BILINEAR per channel (no alpha
        premultiplication), rounded and cast back to the input dtype."""
        from PIL import Image

        chans = [np.asarray(Image.fromarray(np.ascontiguousarray(crop[..., c], np.float32), "F")
                            .resize((tw, th), Image.BILINEAR)) for c in range(crop.shape[2])]
        out = np.stack(chans, axis=-1)
        if np.issubdtype(crop.dtype, np.integer):
            info = np.iinfo(crop.dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        out = out.astype(crop.dtype)
        return out[:, ::-1].copy() if flip else out

    def __call__(self, img, rng=None):
        if hasattr(img, "size") and hasattr(img, "crop") and not isinstance(img, np.ndarray):
            width, height = img.size
        else:
            shape = np.shape(img)
            if len(shape) < 2:
                raise ValueError(f"RandomResizedCrop expects an image, got shape {shape}")
            height, width = shape[0], shape[1]
        y, x, h, w, flip = self.plan(height, width, rng)
        return self.apply(img, y, x, h, w, flip)

    # ---- fused decode ---------------------------------------------------------------------------

    def decode(self, buffers, rng=None, num_threads=1, strict=True, out=None, channels=None):
        """Decode compressed JPEG/PNG ``buffers`` straight to (B, th, tw, C) uint8 with the fused
        crop + scale kernel. ``C`` is the images' channel count (all must agree) unless
        ``channels`` or ``out`` says otherwise. Returns ``out``."""
        from deeplake_loader._kernels import decode as K
        from deeplake_loader.errors import DecodeError

        shapes = []
        for i, b in enumerate(buffers):
            try:
                shapes.append(K.image_info(b))
            except DecodeError as e:
                raise DecodeError(str(e).replace(" (batch position 0)", ""), position=i) from None
        boxes, flips = self.plan_many([(s[1], s[2]) for s in shapes], rng)
        if out is None:
            if channels is None:
                chans = {s[3] for s in shapes}
                if len(chans) > 1:
                    raise ValueError(f"images have different channel counts {sorted(chans)}; pass channels=")
                channels = chans.pop() if chans else 3
            out = np.empty((len(shapes),) + self.size + (int(channels),), np.uint8)
        K.decode_crop_batch(buffers, boxes, flips, out, num_threads=num_threads, strict=strict)
        return out
