"""Attributes and early errors of the loader that scripts reach for, as deeplake 3.9.52 gives them:
``distributed=True`` without a process group fails at ``.pytorch(...)`` with torch's own error;
``loader.collate_fn`` is a callable with a ``__name__`` (``.numpy()``: None)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def test_distributed_without_a_process_group_fails_at_the_terminal_call(loader_ds):
    assert not torch.distributed.is_initialized()
    chain = loader_ds.dataloader().batch(4)
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        chain.pytorch(distributed=True)
    assert len(chain.pytorch()) == 13  # the chain itself is untouched


def test_collate_fn_is_a_named_callable(loader_ds):
    def my_collate(samples):
        return len(samples)

    default = loader_ds.dataloader().batch(4).pytorch(tensors=["labels"]).collate_fn
    assert callable(default) and default.__name__ == "collate_fn"
    mine = loader_ds.dataloader().batch(4).pytorch(tensors=["labels"], collate_fn=my_collate).collate_fn
    assert callable(mine) and mine.__name__ == "my_collate"
    assert loader_ds.dataloader().batch(4).numpy(tensors=["labels"]).collate_fn is None
    assert loader_ds.dataloader().collate_fn is None
    assert loader_ds.pytorch(tensors=["labels"], num_workers=0).collate_fn.__name__ == "collate_fn"
