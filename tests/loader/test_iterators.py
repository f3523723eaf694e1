"""Framework conversion: numpy, torch, tensorflow (and tf.data for model.fit)."""

import numpy as np
import pytest

from .conftest import N, image_for


def test_numpy_batches_are_lists_of_samples(loader_ds):
    """deeplake 3.9.52's .numpy(): each batch a list of per-sample IterableOrderedDicts (numpy values
    as stored, text a str, no index), so ``for s in batch: s["labels"]`` works."""
    from collections import OrderedDict

    b = next(iter(loader_ds.dataloader().batch(4).numpy(tensors=["images", "labels", "vec", "caption"])))
    assert isinstance(b, list) and len(b) == 4
    for row, s in enumerate(b):
        assert isinstance(s, OrderedDict) and list(s.keys()) == ["images", "labels", "vec", "caption"]
        assert [id(v) for v in s] == [id(s[k]) for k in ("images", "labels", "vec", "caption")]  # values, in order
        assert s["images"].dtype == np.uint8 and np.array_equal(s["images"], image_for(row))
        assert s["labels"].dtype == np.uint32 and s["labels"].tolist() == [row % 4]
        assert s["vec"].dtype == np.uint16 and s["vec"].tolist() == [row, 2 * row]
        assert s["caption"] == f"row {row}" and type(s["caption"]) is str


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
