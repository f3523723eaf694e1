"""Per-sample transforms and collation of a decoded batch (columns: tensor -> array or list)."""

from __future__ import annotations

import traceback

import numpy as np

from ..errors import DeepLakeLoaderError, TransformError


def _sample(columns, i):
    return {k: v[i] for k, v in columns.items()}


def apply_transforms(columns: dict, rows, transform, per_tensor: dict):
    """Samples (a list, one per row) after the transforms. ``per_tensor``: tensor -> callable for the
    dict form (already stripped of a fused crop); ``transform``: a callable over the whole sample."""
    n = len(rows)
    out = []
    for i in range(n):
        sample = _sample(columns, i)
        if per_tensor:
            for name, fn in per_tensor.items():
                if fn is None or name not in sample:
                    continue
                try:
                    sample[name] = fn(sample[name])
                except Exception as e:  # noqa: BLE001 - re-raised with where it happened
                    raise TransformError(f"transform of tensor '{name}' raised {type(e).__name__}: {e}",
                                         tensor=name, index=int(rows[i]),
                                         traceback_text=traceback.format_exc()) from e
        if transform is not None:
            try:
                sample = transform(sample)
            except Exception as e:  # noqa: BLE001
                raise TransformError(f"transform raised {type(e).__name__}: {e}", index=int(rows[i]),
                                     traceback_text=traceback.format_exc()) from e
        out.append(sample)
    return out


def default_collate(samples, key=None):
    """Samples (dicts) become one dict, each key collated on its own: stacked as arrays / torch
    tensors, per position for tuples of fixed length; strings, bytes, images and dict values
    (json) stay lists."""
    if not samples:
        return samples
    first = samples[0]
    if isinstance(first, dict) and key is None:
        return {k: default_collate([s[k] for s in samples], key=k) for k in first}
    if isinstance(first, tuple) and all(isinstance(s, tuple) and len(s) == len(first) for s in samples):
        return tuple(default_collate(list(col), key) for col in zip(*samples))
    mod = type(first).__module__
    if mod.startswith("torch"):
        import torch

        if isinstance(first, torch.Tensor):
            _same_shapes([tuple(s.shape) for s in samples], key)
            return torch.stack(samples)
    if isinstance(first, np.ndarray) and first.dtype.kind not in "OUS":
        _same_shapes([s.shape for s in samples], key)
        return np.stack(samples)
    if isinstance(first, (bool, int, float, np.number, np.bool_)):
        return np.asarray(samples)
    return list(samples)


def _same_shapes(shapes, key):
    if len(set(shapes)) > 1:
        first = shapes[0]
        other = next(s for s in shapes if s != first)
        where = f"tensor '{key}'" if key else "the batch"
        raise DeepLakeLoaderError(f"cannot stack {where}: samples have shapes {first} and {other}. Give it a "
                                  "transform that makes shapes equal (e.g. RandomResizedCrop), a collate_fn, or "
                                  "use batch(1)")


def collate(samples, collate_fn, rows):
    if collate_fn is None:
        return default_collate(samples)
    try:
        return collate_fn(samples)
    except Exception as e:  # noqa: BLE001
        raise TransformError(f"collate_fn raised {type(e).__name__}: {e}", index=int(rows[0]) if len(rows) else None,
                             traceback_text=traceback.format_exc()) from e


def fast_batch(columns: dict) -> dict:
    """The batch without transforms: arrays stay (already stacked by the decoder), lists of arrays
    are stacked, text/json stay lists."""
    out = {}
    for k, v in columns.items():
        out[k] = v if isinstance(v, np.ndarray) else default_collate(list(v), key=k)
    return out
