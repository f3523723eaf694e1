"""What user code sees and returns, for every entry point: the sample type, the dtype conversions,
the transform call, the collate and the returned batch, as deeplake 3.9.52 does them
(shared/spec/LOADER_SEMANTICS.md "One batch" and "What a transform sees and returns"). The
``ds.dataloader()`` chain (``.pytorch()``, ``.tensorflow()``, ``.numpy()``), Deep Lake 3's
``ds.pytorch()`` (oss_loaders.py) and the torch DataLoader parts frameworks rebuild
(iterators/torch_parts.py) all go through here; the iterators (iterators/) only turn numpy arrays
into the framework's tensors, keeping every container as it is, and leave a collate_fn's result
alone.

``assembler(cfg, columns)`` builds a loader's ``Assembler``; ``Assembler(columns, rows)`` is the
whole stage (decoded columns + source rows of a batch → the batch), in the calling process or,
pickled with cloudpickle, in worker processes.

* **Samples** are ``IterableOrderedDict``s (sample_forms.py; iterating one yields its values) of
  the selected tensors in ``tensors=`` order, plus ``index`` (np.int64, shape (1,)) last when
  ``return_index`` — never under ``.numpy()`` (deeplake's has no index there). Values: numpy arrays
  with the terminal's conversions (``pytorch``: uint16 → int32, uint32/uint64 → int64, class labels
  included: deeplake's upcast; ``tensorflow``: class labels int64; ``numpy``: as stored); text a
  ``str`` (``ds.pytorch()``: ``array(['a caption'])``, its open-source loader's form), json / list /
  tag an object array as ``tensor[i].numpy()`` gives it; ``decode_method`` ``tobytes`` the stored
  bytes, ``pil`` a PIL image, ``data`` what ``tensor[i].data()`` gives (as stored, never converted).
* **A callable transform** gets one sample; what it returns is the sample from then on (a dict, a
  tuple, anything). **A transform dict** ``{tensor: fn or None}`` maps each named value (None: as
  it is); the sample becomes an IterableOrderedDict of exactly its keys, in its order (``index``
  only if it names it).
* **The batch**: ``.numpy()``: the list of (transformed) samples. ``collate_fn(samples)``: its
  result, untouched. Otherwise the default collate: dicts key by key into a dict of the first
  sample's type (an IterableOrderedDict for samples and transform dicts, a plain ``dict`` for a
  transform's own dict), tuples and lists position by position into a list, arrays stacked when
  shapes agree (else an error naming the tensor and both shapes), ``array(['text'])`` → ``'text'``,
  json → its value, strings / bytes / images → lists, ``data()`` samples merged key by key. No
  transform and no collate_fn (``.pytorch()`` / ``.tensorflow()``): the fast path, no Python per
  sample — the decoder's (B, ...) arrays are the columns of an IterableOrderedDict. A tensor whose
  torchvision Compose the decoder ran (``deeplake_loader/fusion.py``) counts as untransformed there:
  its column already is the final (B, C, H, W) batch; per sample, its values are what torchvision
  gives per sample (torch tensors; ``tv_tensors.Image`` after v2's ToImage), views of that batch.
  ``batch_size=None`` (``ds.pytorch``): the sample itself (text unwrapped) or ``collate_fn(sample)``.
* **ignore_errors** (``partial``): a sample whose transform raises is left out and recorded; the
  Assembler returns a ``Unit`` (what it kept, what it skipped), which pipeline/refill.py cuts into
  full batches with ``collate_samples`` / ``collate_columns``.
"""

from __future__ import annotations

import traceback

import numpy as np

from ..errors import DeepLakeLoaderError, TransformError
from ..sample_forms import DataSample, IterableOrderedDict, numpy_form

# torch has no wide unsigned types that its ops take: widened without loss (deeplake's upcast)
TORCH_WIDEN = {np.dtype(np.uint16): np.dtype(np.int32), np.dtype(np.uint32): np.dtype(np.int64),
               np.dtype(np.uint64): np.dtype(np.int64)}
ARRAY_FORM_HTYPES = ("json", "list", "tag")  # reach user code as tensor[i].numpy() gives them


def sample_cast(mode, reader):
    """The dtype one tensor's values are converted to (None: as stored): what a transform receives,
    and what a batch without user code holds. Never applied to what user code returns."""
    if mode not in ("pytorch", "tensorflow") or reader.is_text:
        return None
    if mode == "tensorflow":
        return np.dtype(np.int64) if reader.base_htype == "class_label" else None
    dtype = reader.dtype
    if reader.base_htype == "class_label":
        return np.dtype(np.int64)
    return TORCH_WIDEN.get(np.dtype(dtype)) if dtype is not None else None


def assembler(cfg, columns: dict) -> "Assembler":
    """The Assembler of a loader config over its pipeline's columns (tensor → fetch.Column)."""
    names = list(columns)
    listed = cfg.mode == "numpy"  # .numpy(): batches are lists of samples, with no index
    sample_index = cfg.return_index and not listed
    tdict = cfg.transform if isinstance(cfg.transform, dict) else None
    if tdict is not None:
        keys = list(tdict)
        if "index" in keys and not sample_index:
            why = ".numpy() gives no index (as deeplake's)" if listed else "return_index=False"
            raise ValueError(f"the transform dict names 'index' but {why}: drop 'index' from the dict"
                             + ("" if listed else " or pass return_index=True"))
        # a tensor's function after a fused RandomResizedCrop was taken out of it (fetch.Column)
        per_tensor = {k: (columns[k].transform if k in columns else tdict[k]) for k in keys}
        transform = None
    else:
        keys = names + (["index"] if sample_index else [])
        per_tensor = None
        transform = cfg.transform
    casts, forms, fused_forms = {}, {}, {}
    for name, col in columns.items():
        if getattr(col, "fused", None) is not None:  # a fused torchvision pipeline's (B, C, H, W) batch
            fused_forms[name] = col.fused.sample_form
        if col.method != "numpy":
            continue
        cast = sample_cast(cfg.mode, col.reader)
        if cast is not None:
            casts[name] = cast
        htype = col.reader.base_htype
        if htype in ARRAY_FORM_HTYPES or (cfg.oss_samples and col.reader.is_text):
            forms[name] = htype
    return Assembler(names=names, keys=keys, transform=transform, per_tensor=per_tensor, collate_fn=cfg.collate_fn,
                     return_index=sample_index, casts=casts, forms=forms, unbatched=cfg.unbatched, listed=listed,
                     partial=cfg.ignore_errors, fused_forms=fused_forms)


class Unit:
    """What the Assembler gives under ignore_errors for one unit of the plan: the source ``rows``
    it kept (in order) with either their ``samples`` (transformed, not collated) or, on the fast
    path, their decoded ``columns``; ``kept``: the positions of those rows in the rows it was
    given; ``skipped``: [(position, SkippedSample)] for samples whose transform raised."""

    def __init__(self, rows, *, samples=None, columns=None, kept=None, skipped=()):
        self.rows = np.asarray(rows, np.int64)
        self.samples, self.columns = samples, columns
        self.kept = np.arange(len(self.rows)) if kept is None else np.asarray(kept, np.int64)
        self.skipped = list(skipped)


class Assembler:
    """Decoded columns + source rows of one batch → the batch (see the module doc). Picklable with
    cloudpickle; holds the user's transform and collate_fn."""

    def __init__(self, *, names, keys, transform, per_tensor, collate_fn, return_index, casts, forms,
                 unbatched, listed, partial=False, fused_forms=None):
        self.names, self.keys = list(names), list(keys)
        self.transform, self.per_tensor, self.collate_fn = transform, per_tensor, collate_fn
        self.return_index, self.casts, self.forms = return_index, dict(casts), dict(forms)
        self.unbatched, self.listed, self.partial = unbatched, listed, partial
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

    @property
    def columnar(self) -> bool:
        """The fast path: no user code, batched, collated straight from the decoder's columns."""
        return not self.runs_user_code and not self.unbatched and not self.listed

    def __call__(self, columns: dict, rows):
        if self.partial:
            return self.unit(columns, rows)
        if self.columnar:
            return self.collate_columns(columns, rows)
        return self.collate_samples(self.samples(columns, rows), rows)

    # ---------------------------------------------------------------------------- samples
    def _values(self, columns, name):
        v = columns[name]
        if name in self.casts:
            v = _cast(v, self.casts[name])
        if name in self.forms:
            v = [numpy_form(self.forms[name], x) for x in v]
        if name in self.fused_forms:
            v = self.fused_forms[name](v)
        return v

    def samples(self, columns, rows, skipped=None) -> list:
        """One sample per row as user code sees it, after the transform. With ``skipped`` (a list),
        a sample whose transform raises is left out and (position, SkippedSample) appended there."""
        cols = {name: self._values(columns, name) for name in self.names}
        out = []
        for i in range(len(rows)):
            sample = IterableOrderedDict((name, cols[name][i]) for name in self.names)
            if self.return_index:
                sample["index"] = np.array([rows[i]], dtype=np.int64)
            if skipped is None:
                out.append(self._transformed(sample, int(rows[i])))
                continue
            try:
                out.append(self._transformed(sample, int(rows[i])))
            except TransformError as e:
                from .refill import SkippedSample

                skipped.append((i, SkippedSample.of(e, row=int(rows[i]), stage="transform")))
        return out

    def _transformed(self, sample, row):
        if self.per_tensor is not None:
            out = IterableOrderedDict()
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

    def unit(self, columns, rows) -> Unit:
        """ignore_errors: this unit's kept samples (or, on the fast path, its columns) and the
        samples whose transform raised."""
        if self.columnar:
            return Unit(rows, columns=columns)
        skipped: list = []
        samples = self.samples(columns, rows, skipped)
        gone = {k for k, _ in skipped}
        kept = [k for k in range(len(rows)) if k not in gone]
        return Unit(np.asarray(rows, np.int64)[kept], samples=samples, kept=kept, skipped=skipped)

    # ----------------------------------------------------------------------------- batches
    def collate_columns(self, columns, rows):
        """The fast path's batch: the decoded columns (cast) and ``index``, one IterableOrderedDict."""
        out = IterableOrderedDict()
        for k in self.keys:
            if k == "index":
                out[k] = np.asarray(rows, dtype=np.int64).reshape(-1, 1)
            else:
                v = columns[k]
                if k in self.casts:
                    v = _cast(v, self.casts[k])
                out[k] = v if isinstance(v, np.ndarray) else collate_values(list(v), k)
        return out

    def collate_samples(self, samples, rows):
        """The batch of (transformed) samples: the list itself under ``.numpy()``, the sample under
        ``batch_size=None``, else ``collate_fn`` or the default collate."""
        if self.listed:
            return list(samples)
        if self.unbatched:
            (sample,) = samples
            if self.collate_fn is None:
                return convert_sample(sample)
            return collate([sample], lambda s: self.collate_fn(s[0]), rows)
        return collate(samples, self.collate_fn, rows)


def _cast(v, dtype):
    if isinstance(v, np.ndarray):
        return v.astype(dtype, copy=False) if v.dtype.kind in "biu" else v
    if isinstance(v, list):
        return [_cast(x, dtype) for x in v]
    return v


# ------------------------------------------------------------------------------------- collate
def collate(samples, collate_fn, rows):
    """``collate_fn(samples)`` (its result is the batch, untouched) or the default collate."""
    if collate_fn is None:
        return default_collate(samples)
    try:
        return collate_fn(samples)
    except Exception as e:  # noqa: BLE001
        raise TransformError(f"collate_fn raised {type(e).__name__}: {e}", index=int(rows[0]) if len(rows) else None,
                             traceback_text=traceback.format_exc()) from e


def remade(first, items):
    """A dict of ``first``'s type holding ``items`` (a plain dict when that type cannot be made
    empty)."""
    try:
        out = type(first)()
    except TypeError:
        out = {}
    out.update(items)
    return out


def default_collate(samples):
    """Samples (what the transform returned) → the batch: dicts key by key into a dict of the first
    sample's type, tuples and lists position by position into a list, anything else as one column."""
    if not samples:
        return samples
    first = samples[0]
    if isinstance(first, dict) and not isinstance(first, DataSample):
        return remade(first, ((k, collate_values([s[k] for s in samples], k)) for k in first.keys()))
    if isinstance(first, (tuple, list)) and all(isinstance(s, (tuple, list)) and len(s) == len(first) for s in samples):
        return [collate_values(col, None) for col in zip(*samples)]  # each column a tuple, as torch's
    return collate_values(list(samples), None)


def collate_values(values, key=None):
    """One key's values over the batch: stacked as arrays / torch tensors when shapes agree;
    ``array(['text'])`` → str; json object arrays → their value; data() samples key by key;
    strings, bytes, images and dicts (json) → lists, except that a column of strings cut out of
    tuples (a transform's tuples, ``data()``'s label names) stays the tuple it is, as torch's
    collate (so deeplake's) leaves it."""
    if not values:
        return list(values)
    first = values[0]
    if isinstance(first, DataSample):
        return _merge(values, key)
    if isinstance(first, tuple) and all(isinstance(s, tuple) and len(s) == len(first) for s in values):
        return tuple(collate_values(list(col), key) for col in zip(*values))
    if type(first).__module__.startswith("torch"):
        import torch

        if isinstance(first, torch.Tensor):
            _same_shapes([tuple(s.shape) for s in values], key)
            return torch.stack(values)
    if isinstance(first, np.ndarray):
        if first.dtype.kind not in "OUS":
            _same_shapes([s.shape for s in values], key)
            return np.stack(values)
        return [_unwrap(v) for v in values]
    if isinstance(first, (bool, int, float, np.number, np.bool_)):
        return np.asarray(values)
    if isinstance(values, tuple) and isinstance(first, (str, bytes)):
        return values
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
        return [_merge(col, key) for col in zip(*values)]  # each column a tuple, as torch's
    if isinstance(first, np.ndarray) and first.dtype.kind not in "OUS":
        _same_shapes([v.shape for v in values], key)
        return np.stack(values)
    if isinstance(first, (bool, int, float, np.number, np.bool_)) and not isinstance(first, str):
        return np.asarray(values)
    if isinstance(values, tuple) and isinstance(first, (str, bytes)):
        return values
    return list(values)


def convert_sample(sample):
    """batch_size=None without a collate_fn: the sample itself, text-likes unwrapped to their value
    (as Deep Lake's default convert)."""
    if isinstance(sample, dict) and not isinstance(sample, DataSample):
        return remade(sample, ((k, _unwrap(v) if _is_text_array(v) else v) for k, v in sample.items()))
    return sample


def _is_text_array(v) -> bool:
    """array(['text']) or an object array of strings (json objects stay arrays, as in Deep Lake)."""
    return isinstance(v, np.ndarray) and v.size > 0 and isinstance(v.reshape(-1)[0], str)


def _same_shapes(shapes, key):
    if len(set(shapes)) > 1:
        first = shapes[0]
        other = next(s for s in shapes if s != first)
        where = f"tensor '{key}'" if key else "the batch"
        raise DeepLakeLoaderError(f"cannot stack {where}: samples have shapes {first} and {other}. Give it a "
                                  "transform that makes shapes equal (e.g. RandomResizedCrop), a collate_fn, or "
                                  "use batch(1)")
