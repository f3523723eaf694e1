"""Batches as torch tensors, zero-copy over the loader's pooled memory: class labels int64,
uint16 -> int32 and uint32/uint64 -> int64 (torch has no wide unsigned types). A transform's
tuple or list becomes a list of tensors; values inside a dict value (``decode_method="data"``)
become tensors of their stored dtype, as Deep Lake's collate leaves them. ``pin`` for
``pin_memory=True`` where an accelerator exists."""

import numpy as np
import torch

from . import Batch

_WIDEN = {np.dtype(np.uint16): np.int32, np.dtype(np.uint32): np.int64, np.dtype(np.uint64): np.int64}


def to_torch(v, htype=None):
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
        if htype == "class_label":
            v = v.astype(np.int64)
        elif v.dtype in _WIDEN:
            v = v.astype(_WIDEN[v.dtype])
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


def convert(batch, htypes):
    if isinstance(batch, dict):
        return Batch({k: to_torch(v, htypes.get(k)) for k, v in batch.items()})
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
