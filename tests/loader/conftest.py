"""Datasets for the loader tests, written by our writer (each row's content encodes its row id, so
every batch can be checked against the rows it claims)."""

import io

import numpy as np
import pytest
from PIL import Image

N = 50
CLASSES = ["zero", "one", "two", "three"]


def image_for(i, h=24, w=32):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 3 + i * 5) % 256, (y * 7 + i) % 256, np.full_like(x, i % 256)], -1).astype(np.uint8)


def png_bytes(arr):
    bio = io.BytesIO()
    Image.fromarray(arr).save(bio, "PNG")
    return bio.getvalue()


@pytest.fixture(scope="session")
def loader_ds(tmp_path_factory):
    """50 rows: PNG images (lossless, so pixels identify the row), labels, text, a per-row vector,
    and a ragged tensor."""
    import deeplake_loader as dl

    path = str(tmp_path_factory.mktemp("loader") / "ds")
    ds = dl.empty(path)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png", max_chunk_size=40_000)
        ds.create_tensor("labels", htype="class_label", class_names=CLASSES)
        ds.create_tensor("caption", htype="text")
        ds.create_tensor("vec", dtype="uint16")
        ds.create_tensor("ragged", dtype="int32")
        ds.extend({
            "images": [image_for(i) for i in range(N)],
            "labels": [i % 4 for i in range(N)],
            "caption": [f"row {i}" for i in range(N)],
            "vec": [np.array([i, 2 * i], np.uint16) for i in range(N)],
            "ragged": [np.arange(i % 5, dtype=np.int32) for i in range(N)],
        })
    return dl.load(path, read_only=True)


def jpeg_dataset(path, images, labels=None, class_names=None) -> str:
    """Write a dataset of JPEG ``images`` (and class ``labels``) at ``path``; returns the path."""
    import deeplake_loader as dl

    ds = dl.empty(str(path))
    columns = {"images": images} if labels is None else {"images": images, "labels": labels}
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        if labels is not None:
            ds.create_tensor("labels", htype="class_label", class_names=class_names or [])
        ds.extend(columns)
    return str(path)


@pytest.fixture(scope="session")
def jpeg_ds(tmp_path_factory):
    """JPEG images of two sizes (for decode methods, fused crops and torchvision-like use)."""
    import deeplake_loader as dl

    path = jpeg_dataset(tmp_path_factory.mktemp("loader_jpeg") / "ds",
                        [image_for(i, 40 + 8 * (i % 2), 60) for i in range(20)], [i % 4 for i in range(20)], CLASSES)
    return dl.load(path, read_only=True)


def rows_of(batch):
    """Row ids a batch says it holds (its index column)."""
    return np.asarray(batch["index"]).reshape(-1).tolist()
