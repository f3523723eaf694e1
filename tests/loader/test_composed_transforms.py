"""Composed transforms in the torchvision style (an object with a ``transforms`` list): PIL input
with decode_method='pil', numpy input otherwise, our RandomResizedCrop first fused into the decode.
Every sample is compared with the same transform applied by hand to the row its index names."""

import io

import pytest
import torch
from PIL import Image

from deeplake_loader.transforms import RandomResizedCrop
from tests.common.loader import Compose
from tests.common.transforms import CenterCrop, Normalize, Resize, ToTensor

from .conftest import image_for, rows_of

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.mark.parametrize("workers", [0, 2])
def test_compose_on_pil_images(jpeg_ds, workers):
    tf = Compose([Resize((16, 20)), ToTensor(), Normalize(MEAN, STD)])
    loader = (jpeg_ds.dataloader().transform({"images": tf, "labels": None, "index": None}).batch(6).shuffle()
              .pytorch(decode_method={"images": "pil"}, num_workers=workers))
    seen = []
    for b in loader:
        assert b["images"].dtype == torch.float32 and tuple(b["images"].shape[1:]) == (3, 16, 20)
        for i, r in enumerate(rows_of(b)):
            want = tf(Image.open(io.BytesIO(jpeg_ds.images[r].tobytes())))
            assert torch.equal(b["images"][i], want), r
            seen.append(r)
    assert sorted(seen) == list(range(len(jpeg_ds)))


def test_compose_on_numpy_images(loader_ds):
    tf = Compose([CenterCrop(16), ToTensor(), Normalize(MEAN, STD)])
    loader = loader_ds.dataloader().transform({"images": tf, "labels": None, "index": None}).batch(8).pytorch()
    for b in loader:
        for i, r in enumerate(rows_of(b)):
            assert torch.equal(b["images"][i], tf(image_for(r)))


def test_compose_starting_with_our_crop_is_fused(jpeg_ds):
    """RandomResizedCrop first: the decoder crops and scales (no full-size image reaches Python);
    the rest of the Compose runs on the crop."""
    crop = RandomResizedCrop(12, scale=(1.0, 1.0), ratio=(60 / 40, 60 / 40))  # the whole 40x60 image
    tf = Compose([crop, ToTensor()])
    rows = [r for r in range(len(jpeg_ds)) if r % 2 == 0]  # the 40x60 images
    loader = jpeg_ds[rows].dataloader().transform({"images": tf, "index": None}).batch(5).pytorch()
    for b in loader:
        assert tuple(b["images"].shape) == (len(rows_of(b)), 3, 12, 12)
        for i, r in enumerate(rows_of(b)):
            fused = crop.decode([jpeg_ds.images[r].tobytes()])[0]  # DCT-scaled: differs from decode + resize
            assert torch.equal(b["images"][i], ToTensor()(fused)), r


def test_with_torchvision_where_it_imports(jpeg_ds):
    tv = pytest.importorskip("torchvision.transforms", reason="torchvision does not import on this torch build")
    tf = tv.Compose([tv.Resize((16, 20)), tv.ToTensor()])
    loader = (jpeg_ds.dataloader().transform({"images": tf, "labels": None, "index": None}).batch(4)
              .pytorch(decode_method={"images": "pil"}))
    for b in loader:
        for i, r in enumerate(rows_of(b)):
            assert torch.equal(b["images"][i], tf(Image.open(io.BytesIO(jpeg_ds.images[r].tobytes()))))
