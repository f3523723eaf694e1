"""Batches as torch tensors, zero-copy over the loader's pooled memory: class labels int64,
uint16 -> int32 and uint32/uint64 -> int64 (torch has no wide unsigned types); ``pin`` for
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
    return v


def convert(batch, htypes):
    if not isinstance(batch, dict):
        return batch
    return Batch({k: to_torch(v, htypes.get(k)) for k, v in batch.items()})


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
