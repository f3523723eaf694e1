"""Batches as torch tensors, zero-copy over the loader's pooled memory: class labels int64,
uint16 -> int32 and uint32/uint64 -> int64 (torch has no wide unsigned types)."""

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
