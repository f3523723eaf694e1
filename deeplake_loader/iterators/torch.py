"""Batches as torch tensors, zero-copy over the loader's pooled memory. The dtypes are already the
batch's (pipeline/collate.py decides them: class labels int64 where no user code ran, a
transform's output as it returned it); only uint16 -> int32 and uint32/uint64 -> int64 are widened,
without loss (torch's ops do not take wide unsigned types). Containers keep their type (an
IterableOrderedDict, a transform's plain dict, a list, a tuple); values inside a dict value
(``decode_method="data"``) become tensors of their stored dtype, as Deep Lake's collate leaves
them. ``pin`` for ``pin_memory=True`` where an accelerator exists."""

import numpy as np
import torch

from ..pipeline.collate import TORCH_WIDEN
from . import remade


def to_torch(v):
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
        if v.dtype in TORCH_WIDEN:
            v = v.astype(TORCH_WIDEN[v.dtype])
        return torch.from_numpy(v)
    if isinstance(v, dict):
        return {k: _as_stored(x) for k, x in v.items()}
    return v


def _as_stored(v):
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
        return torch.from_numpy(v)
    if isinstance(v, dict):
        return {k: _as_stored(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_as_stored(x) for x in v]
    return v


def convert(batch):
    if isinstance(batch, dict):
        return remade(batch, ((k, to_torch(v)) for k, v in batch.items()))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_torch(v) for v in batch)
    return to_torch(batch)


def accelerator_available() -> bool:
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "is_available"):
        return bool(acc.is_available())
    return bool(torch.cuda.is_available())


def pin(batch):
    """``batch`` with its torch tensors copied to page-locked memory (fast copies to an accelerator)."""
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory()
    if isinstance(batch, dict):
        return type(batch)((k, pin(v)) for k, v in batch.items())
    if isinstance(batch, list):
        return [pin(v) for v in batch]
    if isinstance(batch, tuple):
        parts = [pin(v) for v in batch]
        return type(batch)(*parts) if hasattr(batch, "_fields") else tuple(parts)
    return batch
