"""Framework conversion: numpy, torch, tensorflow (and tf.data for model.fit)."""

import numpy as np
import pytest

from .conftest import N, image_for


def test_numpy_batches(loader_ds):
    b = next(iter(loader_ds.dataloader().batch(4).numpy(tensors=["images", "labels", "vec", "caption"])))
    assert [id(v) for v in b] == [id(b[k]) for k in ("images", "labels", "vec", "caption")]  # values, in order
    assert b["images"].dtype == np.uint8 and b["images"].shape == (4, 24, 32, 3)
    assert b["labels"].dtype == np.uint32 and b["labels"].shape == (4, 1)
    assert b["vec"].dtype == np.uint16 and b["caption"] == ["row 0", "row 1", "row 2", "row 3"]
    assert "index" not in b


def test_torch_zero_copy_batches_survive_the_next_batch(loader_ds):
    """Batch memory is pooled: a batch still held by the caller is never overwritten."""
    kept = []
    for b in loader_ds.dataloader().batch(10).pytorch(tensors=["images"]):
        kept.append(b)
    for k, b in enumerate(kept):
        for i in range(10):
            assert np.array_equal(b["images"][i].numpy(), image_for(10 * k + i))


def test_tensorflow_batches_and_dataset(loader_ds):
    tf = pytest.importorskip("tensorflow")
    loader = loader_ds.dataloader().batch(8).tensorflow(tensors=["images", "labels", "caption"])
    b = next(iter(loader))
    assert isinstance(b["images"], tf.Tensor) and b["images"].dtype == tf.uint8
    assert b["labels"].dtype == tf.int64 and tuple(b["labels"].shape) == (8, 1)
    assert b["caption"].dtype == tf.string and b["caption"][1].numpy() == b"row 1"
    assert b["index"].numpy().reshape(-1).tolist() == list(range(8))
    ds = loader.tf_dataset()
    assert ds.element_spec["images"].shape.as_list() == [None, 24, 32, 3]
    assert sum(int(x["labels"].shape[0]) for x in ds) == N
