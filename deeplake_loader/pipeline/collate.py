"""Assemble one batch from its decoded columns, with what Deep Lake 3's transforms see and return
(shared/spec/LOADER_SEMANTICS.md "What a transform sees and returns", OSS_LOADER.md).

``Assembler(columns, rows) -> batch`` is the whole stage; ``assembler(cfg, columns)`` builds it
from the loader's config. It runs in the calling process or, pickled with cloudpickle, in worker
processes (pipeline/workers.py).

* **No transform, no collate_fn, batched** — the fast path, no Python per sample: the decoder's
  (B, ...) arrays are the batch; text/json/bytes columns stay lists; ``index`` int64 (B, 1) is
  added last (or where a transform dict names it). A tensor whose torchvision Compose the decoder
  ran (``deeplake_loader/fusion.py``) counts as untransformed here: its column already is the
  final (B, C, H, W) batch.
* **Otherwise, per sample**: a dict of the selected tensors in ``tensors=`` order, plus ``index``
  (np.int64, shape (1,)) when ``return_index`` (always under ``.numpy()``, which has no such
  switch), with the dtype conversions of the terminal already
  applied (``pytorch``: class_label → int64, uint16 → int32, uint32/uint64 → int64;
  ``tensorflow``: class_label → int64; ``numpy``: none). Under ``ds.pytorch()`` text-likes take
  ``tensor[i].numpy()``'s form (``array(['a caption'])``), as Deep Lake 3's open-source loader
  gives them.
  - a callable transform gets that dict; **what it returns is the batch's content**: a dict →
    exactly its keys (no ``index`` added), a tuple or list → a list of batched values;
  - a transform dict ``{tensor: callable or None}`` maps each named value (None: as is); the batch
    holds exactly the dict's keys, in its order — ``index`` only if the dict names it;
  - then ``collate_fn(samples)`` (its result is the batch) or the default collate: dicts key by
    key, arrays stacked when shapes agree (else a clear error naming the tensor and both shapes —
    or, for ``.numpy()``, a list per key), ``array(['text'])`` → ``'text'``, json → its value,
    strings/bytes/images → lists, ``tensor[i].data()`` samples merged key by key.
  - ``batch_size=None`` (``ds.pytorch``): no batch dimension and no collate: the (transformed)
    sample itself, text unwrapped to ``str``, or ``collate_fn(sample)``.
  - a fused torchvision column's samples are what torchvision gives per sample (torch tensors;
    ``tv_tensors.Image`` after v2's ToImage), views of the decoded batch.
"""

from __future__ import annotations

import traceback

import numpy as np

from ..errors import DeepLakeLoaderError, TransformError
from ..sample_forms import DataSample, IterableSample, numpy_form

# torch has no wide unsigned types that its ops take: widened without loss (iterators/torch.py too)
TORCH_WIDEN = {np.dtype(np.uint16): np.dtype(np.int32), np.dtype(np.uint32): np.dtype(np.int64),
               np.dtype(np.uint64): np.dtype(np.int64)}


def sample_cast(mode, reader):
    """The dtype one tensor's values are converted to (None: as stored): what a transform receives,
    and what a batch without user code holds. Never applied to what user code returns."""
    if mode not in ("pytorch", "tensorflow") or reader.is_text:
        return None
    if reader.base_htype == "class_label":
        return np.dtype(np.int64)
    dtype = reader.dtype
    if mode == "pytorch" and dtype is not None:
        return TORCH_WIDEN.get(np.dtype(dtype))
    return None


def assembler(cfg, columns: dict) -> "Assembler":
    """The Assembler of a loader config over its pipeline's columns (tensor → fetch.Column)."""
    names = list(columns)
    # .numpy() has no return_index: its samples carry index for a transform, its plain batches none
    sample_index = cfg.return_index or cfg.mode == "numpy"
    tdict = cfg.transform if isinstance(cfg.transform, dict) else None
    if tdict is not None:
        keys = list(tdict)
        if "index" in keys and not sample_index:
            raise ValueError("the transform dict names 'index' but return_index=False: drop 'index' from the dict "
                             "or pass return_index=True")
        # a tensor's function after a fused RandomResizedCrop was taken out of it (fetch.Column)
        per_tensor = {k: (columns[k].transform if k in columns else tdict[k]) for k in keys}
        transform = None
    else:
        keys = names + (["index"] if cfg.return_index else [])
        per_tensor = None
        transform = cfg.transform
    casts, text_forms, fused_forms = {}, {}, {}
    for name, col in columns.items():
        if getattr(col, "fused", None) is not None:  # a fused torchvision pipeline's (B, C, H, W) batch
            fused_forms[name] = col.fused.sample_form
        if col.method != "numpy":
            continue
        cast = sample_cast(cfg.mode, col.reader)
        if cast is not None:
            casts[name] = cast
        if cfg.oss_samples and col.reader.is_text:
            text_forms[name] = col.reader.base_htype
    return Assembler(names=names, keys=keys, transform=transform, per_tensor=per_tensor,
                     collate_fn=cfg.collate_fn, return_index=sample_index, casts=casts,
                     text_forms=text_forms, unbatched=cfg.unbatched, ragged_lists=cfg.mode == "numpy",
                     sample_type=IterableSample if cfg.oss_samples else dict, fused_forms=fused_forms)


class Assembler:
    """Decoded columns + source rows of one batch → the batch (see the module doc). Picklable with
    cloudpickle; holds the user's transform and collate_fn."""

    def __init__(self, *, names, keys, transform, per_tensor, collate_fn, return_index, casts, text_forms,
                 unbatched, ragged_lists, sample_type=dict, fused_forms=None):
        self.names, self.keys = list(names), list(keys)
        self.transform, self.per_tensor, self.collate_fn = transform, per_tensor, collate_fn
        self.return_index, self.casts, self.text_forms = return_index, dict(casts), dict(text_forms)
        self.unbatched, self.ragged_lists = unbatched, ragged_lists
        self.sample_type = sample_type  # ds.pytorch(): IterableSample (iterating values), as deeplake's
        # fused torchvision columns: batch -> what the per-sample path would have held (torch tensors)
        self.fused_forms = dict(fused_forms or {})

    @property
    def user_code(self) -> dict:
        """The user's callables this stage runs, by what they are (for worker error messages)."""
        code = {"transform": self.transform, "collate_fn": self.collate_fn}
        for name, fn in (self.per_tensor or {}).items():
            code[f"transform of tensor '{name}'"] = fn
        return {k: v for k, v in code.items() if v is not None}

    @property
    def runs_user_code(self) -> bool:
        """True when user Python runs per batch (worker processes only start for that)."""
        return bool(self.user_code)

    def __call__(self, columns: dict, rows):
        if not self.runs_user_code and not self.unbatched:
            return self._fast(columns, rows)
        samples = self.samples(columns, rows)
        if self.unbatched:
            (sample,) = samples
            if self.collate_fn is None:
                return convert_sample(sample)
            return collate([sample], lambda s: self.collate_fn(s[0]), rows)
        return collate(samples, self.collate_fn, rows, ragged_lists=self.ragged_lists)

    def _fast(self, columns, rows):
        out = {}
        for k in self.keys:
            if k == "index":
                out[k] = np.asarray(rows, dtype=np.int64).reshape(-1, 1)
            else:
                v = columns[k]
                if k in self.casts:
                    v = _cast(v, self.casts[k])
                out[k] = v if isinstance(v, np.ndarray) else collate_values(list(v), k, self.ragged_lists)
        return out

    def samples(self, columns, rows) -> list:
        """One dict per row as the transform sees it, after the transform."""
        cols = {}
        for name in self.names:
            v = columns[name]
            if name in self.casts:
                v = _cast(v, self.casts[name])
            if name in self.text_forms:
                v = [numpy_form(self.text_forms[name], x) for x in v]
            if name in self.fused_forms:
                v = self.fused_forms[name](v)
            cols[name] = v
        out = []
        for i in range(len(rows)):
            sample = self.sample_type((name, cols[name][i]) for name in self.names)
            if self.return_index:
                sample["index"] = np.array([rows[i]], dtype=np.int64)
            out.append(self._transformed(sample, int(rows[i])))
        return out

    def _transformed(self, sample, row):
        if self.per_tensor is not None:
            out = self.sample_type()
            for k in self.keys:
                fn = self.per_tensor[k]
                if fn is None:
                    out[k] = sample[k]
                    continue
                try:
                    out[k] = fn(sample[k])
                except Exception as e:  # noqa: BLE001 - re-raised with where it happened
                    raise TransformError(f"transform of tensor '{k}' raised {type(e).__name__}: {e}", tensor=k,
                                         index=row, traceback_text=traceback.format_exc()) from e
            return out
        if self.transform is not None:
            try:
                return self.transform(sample)
            except Exception as e:  # noqa: BLE001
                raise TransformError(f"transform raised {type(e).__name__}: {e}", index=row,
                                     traceback_text=traceback.format_exc()) from e
        return sample


def _cast(v, dtype):
    if isinstance(v, np.ndarray):
        return v.astype(dtype, copy=False) if v.dtype.kind in "biu" else v
    if isinstance(v, list):
        return [_cast(x, dtype) for x in v]
    return v


# ------------------------------------------------------------------------------------- collate
def collate(samples, collate_fn, rows, ragged_lists=False):
    if collate_fn is None:
        return default_collate(samples, ragged_lists)
    try:
        return collate_fn(samples)
    except Exception as e:  # noqa: BLE001
        raise TransformError(f"collate_fn raised {type(e).__name__}: {e}", index=int(rows[0]) if len(rows) else None,
                             traceback_text=traceback.format_exc()) from e


def default_collate(samples, ragged_lists=False):
    """Samples (what the transform returned) → the batch: dicts key by key, tuples and lists
    position by position into a list, anything else as one column."""
    if not samples:
        return samples
    first = samples[0]
    if isinstance(first, dict):
        return {k: collate_values([s[k] for s in samples], k, ragged_lists) for k in first.keys()}
    if isinstance(first, (tuple, list)) and all(isinstance(s, (tuple, list)) and len(s) == len(first) for s in samples):
        return [collate_values(list(col), None, ragged_lists) for col in zip(*samples)]
    return collate_values(list(samples), None, ragged_lists)


def collate_values(values, key=None, ragged_lists=False):
    """One key's values over the batch: stacked as arrays / torch tensors when shapes agree;
    ``array(['text'])`` → str; json object arrays → their value; data() samples key by key;
    strings, bytes, images and dicts (json) → lists."""
    if not values:
        return values
    first = values[0]
    if isinstance(first, DataSample):
        return _merge(values, key)
    if isinstance(first, tuple) and all(isinstance(s, tuple) and len(s) == len(first) for s in values):
        return tuple(collate_values(list(col), key, ragged_lists) for col in zip(*values))
    if type(first).__module__.startswith("torch"):
        import torch

        if isinstance(first, torch.Tensor):
            if ragged_lists and not _same([tuple(s.shape) for s in values]):
                return list(values)
            _same_shapes([tuple(s.shape) for s in values], key)
            return torch.stack(values)
    if isinstance(first, np.ndarray):
        if first.dtype.kind not in "OUS":
            if ragged_lists and not _same([s.shape for s in values]):
                return list(values)
            _same_shapes([s.shape for s in values], key)
            return np.stack(values)
        return [_unwrap(v) for v in values]
    if isinstance(first, (bool, int, float, np.number, np.bool_)):
        return np.asarray(values)
    return list(values)


def _unwrap(v):
    """A text-like sample in tensor[i].numpy() form back to its value (as Deep Lake's collate)."""
    if not isinstance(v, np.ndarray) or v.size == 0:
        return v
    if v.dtype.kind in "US":
        return str(v.reshape(-1)[0]) if v.size == 1 else v.tolist()
    items = v.tolist()
    return items[0] if len(items) == 1 and isinstance(items[0], dict) else items


def _merge(values, key):
    """tensor[i].data() samples (and what they hold) merged as torch's collate merges them: dicts
    key by key, equal-length lists position by position, arrays stacked, numbers as arrays."""
    first = values[0]
    if isinstance(first, dict):
        if all(isinstance(v, dict) and v.keys() == first.keys() for v in values):
            return {k: _merge([v[k] for v in values], key) for k in first.keys()}
        return list(values)
    if isinstance(first, (list, tuple)) and all(isinstance(v, (list, tuple)) and len(v) == len(first) for v in values):
        return [_merge(list(col), key) for col in zip(*values)]
    if isinstance(first, np.ndarray) and first.dtype.kind not in "OUS":
        _same_shapes([v.shape for v in values], key)
        return np.stack(values)
    if isinstance(first, (bool, int, float, np.number, np.bool_)) and not isinstance(first, str):
        return np.asarray(values)
    return list(values)


def convert_sample(sample):
    """batch_size=None without a collate_fn: the sample itself, text-likes unwrapped to their value
    (as Deep Lake's default convert)."""
    if isinstance(sample, dict) and not isinstance(sample, DataSample):
        return {k: _unwrap(v) if _is_text_array(v) else v for k, v in sample.items()}
    return sample


def _is_text_array(v) -> bool:
    """array(['text']) or an object array of strings (json objects stay arrays, as in Deep Lake)."""
    return isinstance(v, np.ndarray) and v.size > 0 and isinstance(v.reshape(-1)[0], str)


def _same(shapes) -> bool:
    return len(set(shapes)) <= 1


def _same_shapes(shapes, key):
    if len(set(shapes)) > 1:
        first = shapes[0]
        other = next(s for s in shapes if s != first)
        where = f"tensor '{key}'" if key else "the batch"
        raise DeepLakeLoaderError(f"cannot stack {where}: samples have shapes {first} and {other}. Give it a "
                                  "transform that makes shapes equal (e.g. RandomResizedCrop), a collate_fn, or "
                                  "use batch(1)")
