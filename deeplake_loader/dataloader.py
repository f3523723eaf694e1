"""``ds.dataloader()``: the immutable DeepLakeDataLoader chain of Deep Lake 3's enterprise loader
(shared/seed/dataloader-api.txt), with the behaviour of shared/spec/LOADER_SEMANTICS.md.

Every chain call validates its arguments and returns a new loader; the old one is unchanged.
Iterating builds (once) a ``pipeline.Pipeline`` from the frozen ``LoaderConfig`` and converts its
batches for the chosen framework. ``state_dict()`` / ``load_state_dict()`` save and restore the
loader's place mid-epoch (``pipeline/state.py``).
"""

from __future__ import annotations

import functools
import numbers

import numpy as np

from ._kernels.sampling import check_weights
from .errors import TensorDoesNotExistError, VideoDataMethodError
from .pipeline.config import LoaderConfig

DECODE_METHODS = ("numpy", "tobytes", "pil", "data")
_MODES = ("pytorch", "tensorflow", "numpy")
# decode methods per kind of tensor, as deeplake 3.9.52 allows them
_IMAGE_METHODS = frozenset(DECODE_METHODS)  # jpeg / png sample compression
_TEXT_METHODS = frozenset({"numpy", "data"})  # json, list, tag
_OTHER_METHODS = frozenset({"numpy", "tobytes", "data"})


class DecodeMethodTensorError(TensorDoesNotExistError, ValueError):
    """A decode_method key that is not a tensor: deeplake's ValueError text, and our
    TensorDoesNotExistError (a KeyError) listing the tensors there are."""

    def __init__(self, name: str, existing=()):
        super().__init__(name, existing)
        self.args = (f"tensor {name} specified in decode_method not found in tensors. {self.args[0]}",)


def check_decode_methods(dataset, selected, decode_method) -> dict:
    """``decode_method`` checked against the selected tensors with deeplake's errors and texts: a
    key that is not selected → ``ValueError: tensor <name> specified in decode_method not found in
    tensors.``; a method the tensor does not support → ``ValueError: decode_method <m> not
    supported for tensor <name>. Supported methods for this tensor are {...}`` (jpeg/png images:
    numpy, tobytes, pil, data; json/list/tag: numpy, data; others: numpy, tobytes, data)."""
    if not isinstance(decode_method, dict):
        raise ValueError(f"decode_method must be a dict of tensor -> method, got {type(decode_method).__name__}")
    for name, method in decode_method.items():
        if name not in dataset.tensors:
            raise DecodeMethodTensorError(name, list(dataset.tensors))
        if name not in selected:
            raise ValueError(f"tensor {name} specified in decode_method not found in tensors. Selected tensors: "
                             f"{list(selected)}")
        reader = dataset._reader(name)
        if reader.sample_compression in ("jpeg", "png"):
            supported = _IMAGE_METHODS
        elif reader.base_htype in ("json", "list", "tag"):
            supported = _TEXT_METHODS
        else:
            supported = _OTHER_METHODS
        if method not in supported:
            listed = "{" + ", ".join(repr(m) for m in sorted(supported)) + "}"
            raise ValueError(f"decode_method {method} not supported for tensor {name}. Supported methods for this "
                             f"tensor are {listed}")
        if method == "data" and reader.base_htype == "video":
            raise VideoDataMethodError(name)
    return dict(decode_method)


def _int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class _LoaderBase:
    """The chain. With torch installed the concrete class also derives from torch's DataLoader."""

    def __init__(self, dataset, _config: LoaderConfig | None = None, _called: frozenset = frozenset()):
        cfg = _config or LoaderConfig(dataset=dataset)
        object.__setattr__(self, "_config", cfg)
        object.__setattr__(self, "_called", _called)
        object.__setattr__(self, "_pipeline", None)
        object.__setattr__(self, "_summary", None)  # what ignore_errors skipped (pipeline/refill.py), made on first use
        object.__setattr__(self, "dataset", cfg.dataset)  # with torch: a RowsDataset (iterators/torch_parts.py)

    # -------------------------------------------------------------------------------- helpers
    def _next(self, called: str | None = None, **changes):
        called_set = self._called | ({called} if called else set())
        return type(self)(None, self._config.with_(**changes), frozenset(called_set))

    def _once(self, what: str, message: str):
        if what in self._called:
            raise ValueError(message)

    def _existing(self) -> list:
        return list(self._config.dataset.tensors)

    def _check_tensor(self, name):
        if name == "index":
            raise ValueError("index is not a tensor, to get index, pass return_index=True")
        if name not in self._config.dataset.tensors:
            raise TensorDoesNotExistError(name, self._existing())

    # -------------------------------------------------------------------------------- the chain
    def batch(self, batch_size: int, drop_last: bool = False):
        self._once("batch", "batch size is already set")
        return self._next("batch", batch_size=_int("batch_size", batch_size, 1), drop_last=bool(drop_last))

    def shuffle(self, shuffle: bool = True, buffer_size: int = 2048):
        self._once("shuffle", "shuffle is already set")
        return self._next("shuffle", shuffle=bool(shuffle), buffer_size=_int("buffer_size", buffer_size, 1))

    def offset(self, off: int = 0):
        self._once("offset", "offset is already set")
        return self._next("offset", offset=_int("offset", off, 0))

    def transform(self, transform, **kwargs):
        self._once("transform", "transform is already set")
        if isinstance(transform, dict):
            for name, fn in transform.items():
                if name != "index":
                    self._check_tensor(name)
                if fn is not None and not callable(fn):
                    raise ValueError(f"transform for tensor '{name}' must be callable or None, got {type(fn).__name__}")
            if self._config.tensors is not None:
                raise ValueError(f"Tensors have already been specified in the .{self._config.mode} method. A "
                                 "transform dict also chooses the tensors (its keys): pass one or the other")
            transform = dict(transform)
        elif callable(transform):
            if kwargs:
                transform = functools.partial(transform, **kwargs)
        else:
            raise ValueError(f"transform must be a callable or a dict of callables, got {type(transform).__name__}")
        return self._next("transform", transform=transform)

    def query(self, query_string: str):
        from .tql import query_rows

        if not isinstance(query_string, str):
            raise ValueError(f"query_string must be a str, got {type(query_string).__name__}")
        ds = self._config.dataset
        result = query_rows(ds, query_string)
        view = ds[result.rows.tolist()]
        tensors = tuple(result.tensors) if result.tensors else self._config.query_tensors
        return self._next(None, dataset=view, query_tensors=tensors)

    def sample_by(self, weights, replace: bool | None = True, size: int | None = None):
        """A view of ``size`` (default: every) rows drawn with probability proportional to
        ``weights`` (one per row, 1-D; or a query-language weight expression). Without replacement
        it is a weighted reordering: rows of positive weight in a weighted random order, then the
        rows of weight 0 in dataset order, cut at ``size`` (at most every row), as deeplake."""
        ds = self._config.dataset
        if isinstance(weights, str):
            from .tql import sample_weights

            w, q_replace, q_size = sample_weights(ds, weights)
            replace = q_replace if q_replace is not None else replace
            size = q_size if q_size is not None and size is None else size
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.ndim != 1:
                raise ValueError(f"weights should be 1 dimensional array. (got shape {w.shape})")
            if len(w) != len(ds):
                raise ValueError(f"sample_by got {len(w)} weights for a dataset of {len(ds)} rows")
        if size is not None:
            size = _int("size", size, 0)
        replace = True if replace is None else bool(replace)
        if len(w):
            try:
                check_weights(w, allow_zero=not replace)
            except ValueError as e:
                raise ValueError(f"sample_by: {e}") from None
        return self._next(None, sample=(w, replace, size))

    def _terminal(self, mode, num_workers=0, collate_fn=None, tensors=None, num_threads=None, prefetch_factor=2,
                  distributed=False, return_index=True, decode_method=None, persistent_workers=False):
        if mode in self._called:
            raise ValueError(f"already called .{mode}()")
        for other in _MODES:
            if other in self._called:
                raise ValueError(f"Can't call .{mode}() after .{other}()")
        changes = dict(mode=mode, num_workers=_int("num_workers", num_workers, 0),
                       prefetch_factor=_int("prefetch_factor", prefetch_factor, 1),
                       persistent_workers=bool(persistent_workers), distributed=bool(distributed),
                       return_index=bool(return_index))
        if num_threads is not None:
            changes["num_threads"] = _int("num_threads", num_threads, 1)
        if collate_fn is not None:
            if not callable(collate_fn):
                raise ValueError(f"collate_fn must be callable, got {type(collate_fn).__name__}")
            changes["collate_fn"] = collate_fn
        if isinstance(tensors, str):
            tensors = [tensors]
        if tensors:  # None or [] (as deeplake): every tensor
            if isinstance(self._config.transform, dict):
                raise ValueError("Tensors have already been specified by passing a dictionary to .transform() method "
                                 "(its keys choose the tensors): pass one or the other")
            for t in tensors:
                self._check_tensor(t)
            changes["tensors"] = tuple(tensors)
        if decode_method is not None:
            from .pipeline.plan import selected_tensors

            selected = selected_tensors(self._config.with_(**changes))
            changes["decode_method"] = check_decode_methods(self._config.dataset, selected, decode_method)
        if mode == "pytorch" and changes["distributed"] and self._config.shard is None:
            import torch.distributed as dist

            dist.get_world_size()  # deeplake asks here: without a process group, torch's own error now, not at len()
        return self._next(mode, **changes)

    def pytorch(self, num_workers: int = 0, collate_fn=None, tensors=None, num_threads=None, prefetch_factor: int = 2,
                distributed: bool = False, return_index: bool = True, decode_method=None,
                persistent_workers: bool = False):
        return self._terminal("pytorch", num_workers, collate_fn, tensors, num_threads, prefetch_factor, distributed,
                              return_index, decode_method, persistent_workers)

    def tensorflow(self, num_workers: int = 0, collate_fn=None, tensors=None, num_threads=None,
                   prefetch_factor: int = 2, return_index: bool = True, decode_method=None,
                   persistent_workers: bool = False):
        return self._terminal("tensorflow", num_workers, collate_fn, tensors, num_threads, prefetch_factor, False,
                              return_index, decode_method, persistent_workers)

    def numpy(self, num_workers: int = 0, tensors=None, num_threads=None, prefetch_factor: int = 2,
              decode_method=None, persistent_workers: bool = False):
        return self._terminal("numpy", num_workers, None, tensors, num_threads, prefetch_factor, False,
                              False, decode_method, persistent_workers)

    # ----------------------------------------------------------------------------- iteration
    @property
    def config(self) -> LoaderConfig:
        return self._config

    @property
    def batch_size(self):
        return None if self._config.unbatched else self._config.batch_size

    @property
    def num_workers(self):
        return self._config.num_workers

    @property
    def drop_last(self):
        return self._config.drop_last

    def __len__(self) -> int:
        """Batches of an epoch as planned. With ``ignore_errors`` an epoch that skipped samples can
        end before (batches stay full, so there are fewer of them), except under ``distributed``,
        where every rank yields this many."""
        from .pipeline import plan

        return plan.num_batches(self._config)

    @property
    def summary(self):
        """With ``ds.dataloader(ignore_errors=True)``: a ``pipeline.refill.Summary`` of every
        sample this loader skipped (epoch, tensor, row, stage, the error), in the order met; None
        otherwise (as deeplake 3.9.52)."""
        if not self._config.ignore_errors:
            return None
        return self._skips()

    def _skips(self):
        if self._summary is None:
            from .pipeline.refill import Summary

            object.__setattr__(self, "_summary", Summary(verbose=self._config.verbose))
        return self._summary

    def _get_pipeline(self):
        if self._pipeline is None:
            from .pipeline import Pipeline

            summary = self._skips() if self._config.ignore_errors else None
            object.__setattr__(self, "_pipeline", Pipeline(self._config, summary=summary))
        return self._pipeline

    def __iter__(self):
        from .iterators import converter_for
        from .pipeline import plan, state

        self._config.dataset._open_readers(plan.selected_tensors(self._config))  # together, not one by one
        convert = converter_for(self._config)
        batches = state.track(self)
        if self._config.progressbar:
            from .progress import bar

            yield from bar(map(convert, batches), len(self), self._config.dataset.path)
            return
        for batch in batches:
            yield convert(batch)

    def state_dict(self) -> dict:
        """Where this loader is (epoch, batches handed out in it, root seed, a fingerprint of dataset,
        version and chain): small and JSON-serialisable. Mid-epoch, the next batch after a
        ``load_state_dict`` of it is the one after the last batch handed out; after an epoch's
        last batch, the next epoch's first."""
        from .pipeline import state

        return state.save(self)

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue from ``state_dict`` at the next ``iter()``: the rest of that epoch and every
        later one as the uninterrupted run yields them. A state of another dataset, version or
        chain raises ``StateMismatchError`` naming what differs."""
        from .pipeline import state

        state.load(self, state_dict)

    def tf_dataset(self):
        """A tf.data.Dataset of this loader's batches (for model.fit)."""
        from .iterators.tensorflow import dataset

        return dataset(self if self._config.mode == "tensorflow" else self.tensorflow())

    @property
    def multiprocessing_context(self):
        """The context our worker processes start with (what a DataLoader rebuilt from this loader's
        parts should use too): fork (the default on Linux), or spawn's for workers that run a fresh
        interpreter on our own entry module; None without workers. Settable, as torch's."""
        if self._config.num_workers == 0:
            return None
        from .pipeline.workers import context_of

        return context_of(self._config.start_method)

    @multiprocessing_context.setter
    def multiprocessing_context(self, ctx):
        from .pipeline.workers import start_method_of

        self._reconfigure(start_method=start_method_of(ctx))

    def _reconfigure(self, **changes):
        """Change options of a loader that has not started an epoch (torch's rule for setters)."""
        self.close()
        object.__setattr__(self, "_config", self._config.with_(**changes))

    def close(self):
        if self._pipeline is not None:
            self._pipeline.close()
            object.__setattr__(self, "_pipeline", None)

    def __getstate__(self):
        """Pickled (cloudpickle, a framework's spawned processes) as its chain and its place, never
        its running pipeline (threads, workers, pooled memory): the copy continues where this
        loader is (``state_dict``) and starts its own pipeline on its first ``iter()``."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_pipeline", "_tracker", "_summary")}
        if "_parts" in state:
            state["_parts"] = {}  # the sampler & co. are made again on first use
        if "_tracker" in self.__dict__:
            state["_place"] = self.state_dict()
        return state

    def __setstate__(self, state):
        place = state.pop("_place", None)
        for k, v in state.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_pipeline", None)
        object.__setattr__(self, "_summary", None)
        if place is not None:
            self.load_state_dict(place)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self):
        c = self._config
        return (f"DeepLakeDataLoader(batch_size={c.batch_size}, shuffle={c.shuffle}, offset={c.offset}, "
                f"mode={c.mode}, num_workers={c.num_workers})")


def _make_class():
    try:
        from torch.utils.data import DataLoader
    except ImportError:
        return type("DeepLakeDataLoader", (_LoaderBase,), {"__module__": __name__})

    from .iterators.torch_loader import TorchShape

    # Frameworks (Lightning, Accelerate, ...) check isinstance(loader, DataLoader), read its attributes
    # and rebuild it from its parts: TorchShape answers with torch's meanings. torch's __init__ is not
    # run: everything it would set up is ours. torch guards a few attributes with __setattr__ after init.
    return type("DeepLakeDataLoader", (TorchShape, _LoaderBase, DataLoader),
                {"__module__": __name__, "__setattr__": object.__setattr__,
                 "__len__": _LoaderBase.__len__, "__iter__": TorchShape.__iter__})


_CLASS = []


def loader_class():
    """The DeepLakeDataLoader class, made on first use so that importing the package does not
    import torch."""
    if not _CLASS:
        _CLASS.append(_make_class())
    return _CLASS[0]


def __getattr__(name):  # PEP 562: deeplake_loader.dataloader.DeepLakeDataLoader
    if name == "DeepLakeDataLoader":
        return loader_class()
    raise AttributeError(name)


def dataloader(dataset, ignore_errors: bool = False, verbose: bool = False):
    """``deeplake_loader.dataloader(ds)``, the same as ``ds.dataloader()``. ``ignore_errors=True``:
    a sample that cannot be read, decoded or transformed is skipped (batches stay full, taking the
    following rows) and reported in ``loader.summary``; ``verbose=True`` also logs each skip
    (logger ``deeplake_loader``) as it happens."""
    from .pipeline.config import LoaderConfig

    return loader_class()(None, LoaderConfig(dataset=dataset, ignore_errors=bool(ignore_errors), verbose=bool(verbose)))
