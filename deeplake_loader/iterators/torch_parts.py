"""What frameworks that inspect or rebuild a torch DataLoader find on ours.

PyTorch Lightning, Hugging Face Accelerate and DeepSpeed read a DataLoader's attributes, and some
rebuild it from its parts: Lightning re-creates the loader's own class with a DistributedSampler
for DDP (``use_distributed_sampler``); Accelerate builds a plain torch
``DataLoader(loader.dataset, batch_sampler=loader.batch_sampler, collate_fn=loader.collate_fn,
num_workers=loader.num_workers, ...)``. Our loader answers with parts that keep our data path:

* ``RowSampler`` (``loader.sampler``): the rows of one epoch in the order the loader yields them
  (view, query, sample_by, shard, offset, the chunk-aware shuffle buffer), as a torch Sampler of
  positions in ``loader.dataset`` (the view's rows after the query; torch's index space).
  ``loader.batch_sampler`` is torch's own ``BatchSampler`` over it, which cuts exactly the batches
  our pipeline yields. A sharded loader (``distributed=True``, or a shard a framework gave) has a
  ``ShardSampler``, a DistributedSampler, so Lightning sees it as already sharded.
* ``RowsDataset`` (``loader.dataset``): the Deep Lake dataset (its attributes and ``[]`` are the
  Deep Lake view's) that is also a map-style torch Dataset: ``len`` is the rows the loader reads
  from (after a query), and ``__getitems__(positions)`` reads and natively decodes those rows as
  one finished batch (transforms, collate, ``index`` = source row ids as always).
* ``Collate`` (``loader.collate_fn``): passes that finished batch through; merges plain samples
  with the user's collate_fn or the default one.
* ``loader_args``: the keyword arguments of torch's DataLoader, as a framework passes them when it
  re-creates our loader, turned into our config: a DistributedSampler found in ``sampler`` or
  ``batch_sampler`` becomes our own sharding with its rank and world size (contiguous shards, equal
  batch counts); torch's options (pin_memory, worker_init_fn, timeout, ...) are kept.

``TorchShape`` is the mixin that gives the loader class these attributes, with torch's meanings.
"""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset, DistributedSampler, RandomSampler, Sampler, SequentialSampler

from .. import random as dl_random
from ..pipeline import plan
from ..pipeline.background import background
from ..pipeline.collate import default_collate
from . import Batch, converter_for

_TORCH_KWARGS = ("batch_size", "shuffle", "sampler", "batch_sampler", "num_workers", "collate_fn", "pin_memory",
                 "drop_last", "timeout", "worker_init_fn", "multiprocessing_context", "generator", "prefetch_factor",
                 "persistent_workers", "pin_memory_device", "in_order")


# ------------------------------------------------------------------------------------- samplers
class RowSampler(Sampler):
    """One epoch's rows in the loader's order, as positions in ``loader.dataset``; each ``iter`` is
    the next epoch (or the one ``set_epoch`` chose). With ``generator`` set (a torch.Generator, as Accelerate sets and
    keeps in step across processes) the epoch's shuffle and sample_by seeds are drawn from it, so
    every process computes the same order; otherwise from ``deeplake_loader.random``."""

    def __init__(self, cfg, generator=None, on_epoch=None):
        self.cfg = cfg
        self.generator = generator
        self.epoch = 0
        self.on_epoch = on_epoch  # told each epoch's positions (the loader's RowsDataset looks ahead)

    def __len__(self) -> int:
        return plan.num_rows(self.cfg)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        positions = positions_of(self.cfg, self.rows(epoch))
        if self.on_epoch is not None:
            self.on_epoch(positions)
        return iter(positions.tolist())

    def rows(self, epoch: int) -> np.ndarray:
        """The epoch's source row ids in order."""
        cfg = self.cfg
        rank = plan.world(cfg)[0]
        if self.generator is not None:
            draw = torch.randint(0, 2**62, (2,), dtype=torch.int64, generator=self.generator).tolist()
            sample_seed, shuffle_seed = draw
        else:
            sample_seed, shuffle_seed = None, dl_random.stream("shuffle-sampler", epoch, rank)
        order = plan.epoch_order(cfg, epoch, sample_seed=sample_seed)
        primary = plan.primary_tensor(cfg, plan.selected_tensors(cfg))
        if primary is None:
            return order
        return plan.yield_order(cfg, cfg.dataset._reader(primary), order, shuffle_seed)


class ShardSampler(RowSampler, DistributedSampler):
    """A sharded loader's RowSampler (this rank's rows); a DistributedSampler, so frameworks see the
    loader as already sharded and inject nothing."""

    def __init__(self, cfg, generator=None, on_epoch=None):  # DistributedSampler.__init__ is not run
        RowSampler.__init__(self, cfg, generator, on_epoch)
        self.rank, self.num_replicas = plan.world(cfg)
        self.shuffle, self.drop_last, self.seed = cfg.shuffle, False, 0
        self.num_samples = len(self)
        self.total_size = self.num_samples * self.num_replicas
        self.dataset = None


# -------------------------------------------------------------------------------------- dataset
def positions_of(cfg, rows: np.ndarray) -> np.ndarray:
    """Positions in ``plan.base_rows(cfg)`` of source rows (the first one where a view repeats a row:
    every position of a row reads the same sample)."""
    base = plan.base_rows(cfg)
    order = np.argsort(base, kind="stable")
    return order[np.searchsorted(base[order], rows)]


class RowsDataset(Dataset):
    """The loader's Deep Lake dataset, also a map-style torch Dataset over the rows the loader reads
    from (``plan.base_rows``: the view's rows after a query): ``__getitems__(positions)`` is the
    finished batch of those rows (its ``index`` the source row ids, as always). Other attributes
    and ``[]`` are the Deep Lake view's."""

    def __init__(self, cfg, called=frozenset()):
        self._cfg, self._called = cfg, called
        self._owner_pid = os.getpid()
        self._rows = None  # plan.base_rows(cfg), on first use
        self._state = None  # (pid, pipeline, rng, convert), made in the process that reads
        self._ahead = None  # Lookahead over the epoch the loader's sampler last yielded

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_cfg", "_called", "_owner_pid", "_rows", "_state", "_ahead"):
            raise AttributeError(name)
        return getattr(self._cfg.dataset, name)

    def _base(self) -> np.ndarray:
        if self._rows is None:
            self._rows = plan.base_rows(self._cfg)
        return self._rows

    def __len__(self) -> int:
        return len(self._base())

    def __getitem__(self, item):
        return self._cfg.dataset[item]

    def __getitems__(self, positions):
        base = self._base()
        pos = np.asarray(positions, dtype=np.int64).reshape(-1)
        bad = pos[(pos < 0) | (pos >= len(base))]
        if len(bad):
            raise IndexError(f"position {int(bad[0])} is out of range for a loader dataset of {len(base)} rows")
        if self._ahead is not None:
            batch = self._ahead.take(pos)
            if batch is not None:
                return Finished(batch)
            self._close_ahead()  # asked for something else: decode directly from now on
        return Finished(self._decode(pos))

    def _decode(self, pos):
        pipe, rng, convert = self._reader_state()
        return convert(pipe.batch_of(self._base()[pos], rng))

    def _expect(self, positions):
        """The loader's sampler starts an epoch: get ready to decode its batches ahead."""
        self._close_ahead()
        if os.getpid() == self._owner_pid:
            self._ahead = Lookahead(self, positions, self._cfg.batch_size, self._cfg.drop_last)

    def _close_ahead(self):
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.close()

    def _reader_state(self):
        if self._state is None or self._state[0] != os.getpid():
            from ..pipeline import Pipeline

            info = torch.utils.data.get_worker_info()
            worker = info.id + 1 if info is not None else 0
            cfg = self._cfg.with_(num_workers=0)  # this process decodes; no pool of our own, private memory
            rng = np.random.default_rng(dl_random.stream("transform-rows", 0, plan.world(cfg)[0], worker))
            self._state = (os.getpid(), Pipeline(cfg), rng, converter_for(cfg))
        return self._state[1:]

    def __reduce__(self):
        # torch's spawn workers pickle the dataset: the config, with its transforms (lambdas and
        # closures too), travels by value
        return _by_value, (RowsDataset, _dumps((self._cfg, self._called)))

    def __repr__(self):
        return f"RowsDataset({self._cfg.dataset!r})"


def _dumps(obj) -> bytes:
    import cloudpickle

    return cloudpickle.dumps(obj)


def _by_value(cls, blob):
    import pickle

    return cls(*pickle.loads(blob))


class Lookahead:
    """The batches a torch DataLoader built from our parts is about to ask for (the epoch its
    sampler just yielded, cut as torch's BatchSampler cuts it), decoded on a background thread so
    decoding overlaps the training step as in our own loop. Only a request for exactly the next
    batch is served from it (``take`` returns None for anything else: the caller then decodes
    directly). The thread starts at the first request, so a DataLoader whose workers read in other
    processes costs nothing here."""

    def __init__(self, dataset, positions, batch_size, drop_last):
        n = len(positions)
        cuts = [positions[i:i + batch_size] for i in range(0, n, batch_size) if not drop_last or i + batch_size <= n]
        self._expected = list(reversed(cuts))
        self._stops = []
        self._batches = background(lambda: ((b, dataset._decode(b)) for b in cuts), 2, self._stops,
                                   "deeplake_loader-lookahead")

    def take(self, pos):
        if not self._expected or not np.array_equal(self._expected[-1], pos):
            return None
        self._expected.pop()
        done, batch = next(self._batches)
        if not np.array_equal(done, pos):  # batches come in order; never hand over other rows
            raise RuntimeError(f"lookahead out of step: decoded positions {done[:4]}..., asked for {pos[:4]}...")
        return batch

    def close(self):
        self._batches.close()
        for stop in list(self._stops):
            stop.set()


class Finished:
    """A batch that is already collated (what ``RowsDataset.__getitems__`` gives ``Collate``)."""

    __slots__ = ("batch",)

    def __init__(self, batch):
        self.batch = batch


class Collate:
    """``loader.collate_fn``: a finished batch passes through; a list of samples is merged by the
    user's collate_fn (``.fn``) or the default collate, then converted for the loader's framework."""

    def __init__(self, cfg):
        self.fn = cfg.collate_fn
        self._cfg = cfg

    def __reduce__(self):
        return _by_value, (Collate, _dumps((self._cfg,)))

    def __call__(self, data):
        if isinstance(data, Finished):
            return data.batch
        out = self.fn(data) if self.fn is not None else default_collate(list(data))
        return converter_for(self._cfg)(Batch(out) if isinstance(out, dict) else out)

    def __repr__(self):
        return f"Collate(fn={self.fn!r})"


# ------------------------------------------------------------------------- re-creation arguments
def _samplers_in(*objs):
    """Samplers reachable from a framework's sampler / batch sampler: wrappers keep the original as
    ``sampler``, ``batch_sampler`` or ``_batch_sampler`` (torch's BatchSampler, Accelerate's
    BatchSamplerShard, Lightning's _IndexBatchSamplerWrapper) or as ``dataset._sampler``
    (Lightning's DistributedSamplerWrapper)."""
    from ..dataset import Dataset as DeepLakeDataset

    seen, todo = [], list(objs)
    while todo and len(seen) < 32:
        o = todo.pop(0)
        if o is None or any(o is s for s in seen):
            continue
        seen.append(o)
        if not isinstance(o, (RowsDataset, DeepLakeDataset, RowSampler)):
            todo.extend(getattr(o, a, None) for a in ("sampler", "batch_sampler", "_batch_sampler", "dataset",
                                                      "_sampler"))
    return seen


def find_loader(dataset, sampler, batch_sampler):
    """(config, called) of the loader whose parts a framework passes back, or None."""
    if isinstance(dataset, RowsDataset):
        return dataset._cfg, dataset._called
    for o in _samplers_in(sampler, batch_sampler):
        if isinstance(o, RowSampler):
            return o.cfg, frozenset({o.cfg.mode} if o.cfg.mode else ())
        if isinstance(o, RowsDataset):
            return o._cfg, o._called
    return None


def loader_args(cfg, kwargs: dict):
    """``cfg`` with torch DataLoader keyword arguments applied (see the module docstring)."""
    from ..dataloader import _int

    unknown = sorted(set(kwargs) - set(_TORCH_KWARGS))
    if unknown:
        raise TypeError(f"DeepLakeDataLoader got unexpected keyword arguments {unknown}; it takes torch "
                        f"DataLoader's: {', '.join(_TORCH_KWARGS)}")
    sampler, batch_sampler = kwargs.get("sampler"), kwargs.get("batch_sampler")
    changes = {}
    found = _samplers_in(sampler, batch_sampler)
    dist = next((s for s in found if isinstance(s, DistributedSampler) and not isinstance(s, ShardSampler)), None)
    if dist is not None:
        changes["shard"] = (int(dist.rank), int(dist.num_replicas))
    elif any(isinstance(s, SequentialSampler) for s in found) and not any(isinstance(s, RowSampler) for s in found):
        changes["shuffle"] = False  # e.g. Lightning's overfit_batches: the rows in order
    elif any(isinstance(s, RandomSampler) for s in found) and not any(isinstance(s, RowSampler) for s in found):
        changes["shuffle"] = True
    elif (sampler is not None or batch_sampler is not None) and not any(isinstance(s, RowSampler) for s in found):
        what = sampler if sampler is not None else batch_sampler
        raise ValueError(f"a DeepLakeDataLoader reads rows in its own order and cannot take a {type(what).__name__} "
                         "as sampler/batch_sampler; use .shuffle(), .sample_by(), .query() or distributed=True")
    if batch_sampler is not None:
        bs = getattr(batch_sampler, "batch_size", None)
        if bs is not None:
            changes["batch_size"] = _int("batch_size", bs, 1)
        if getattr(batch_sampler, "drop_last", None) is not None:
            changes["drop_last"] = bool(batch_sampler.drop_last)
    else:
        if kwargs.get("batch_size", 1) is None:
            raise ValueError("batch_size=None (no batching) is not supported by DeepLakeDataLoader; use batch(1)")
        if "batch_size" in kwargs and (sampler is None or kwargs["batch_size"] != 1):
            changes["batch_size"] = _int("batch_size", kwargs["batch_size"], 1)
        if "drop_last" in kwargs and sampler is None:
            changes["drop_last"] = bool(kwargs["drop_last"])
        if kwargs.get("shuffle") is not None and sampler is None:
            changes["shuffle"] = bool(kwargs["shuffle"])
    if "num_workers" in kwargs:
        changes["num_workers"] = _int("num_workers", kwargs["num_workers"], 0)
    if kwargs.get("collate_fn") is not None:
        fn = kwargs["collate_fn"]
        if not callable(fn):
            raise ValueError(f"collate_fn must be callable, got {type(fn).__name__}")
        changes["collate_fn"] = fn.fn if isinstance(fn, Collate) else fn
    if kwargs.get("prefetch_factor") is not None:
        changes["prefetch_factor"] = _int("prefetch_factor", kwargs["prefetch_factor"], 1)
    for name in ("pin_memory", "persistent_workers"):
        if name in kwargs:
            changes[name] = bool(kwargs[name])
    if "timeout" in kwargs:
        t = kwargs["timeout"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or t < 0:
            raise ValueError(f"timeout option should be non-negative, got {t!r}")
        changes["timeout"] = float(t)
    if kwargs.get("worker_init_fn") is not None:
        changes["worker_init_fn"] = checked_worker_init_fn(kwargs["worker_init_fn"])
    if kwargs.get("generator") is not None:
        changes["generator"] = kwargs["generator"]
    checked_context(kwargs.get("multiprocessing_context"))
    if kwargs.get("in_order") is False:
        raise ValueError("in_order=False is not supported: DeepLakeDataLoader always yields batches in order")
    return cfg.with_(**changes) if changes else cfg


def checked_worker_init_fn(fn):
    if fn is not None and not callable(fn):
        raise ValueError(f"worker_init_fn must be callable, got {type(fn).__name__}")
    return fn


def checked_context(ctx):
    """Our worker processes always start with 'spawn' (a forked child of a process that ran the
    OpenMP decode kernels hangs in libgomp): None, 'spawn' or a spawn context are accepted."""
    if ctx is None:
        return None
    method = ctx if isinstance(ctx, str) else getattr(ctx, "get_start_method", lambda: None)()
    if method != "spawn":
        raise ValueError(f"multiprocessing_context={ctx!r}: DeepLakeDataLoader starts its worker processes with "
                         "'spawn' only (a forked child of a process that ran the OpenMP decode kernels can hang); "
                         "pass None or 'spawn'")
    return ctx


# --------------------------------------------------------------------------------------- mixin
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


class TorchShape:
    """torch DataLoader attributes with torch's meanings (the loader class derives from torch's
    DataLoader without running its __init__). Values of a bare ``ds.dataloader()`` match deeplake
    3.9.52's where torch allows (batch_size 1, num_workers 0, timeout 0, ...); ``prefetch_factor``
    is None without workers, as torch requires of a DataLoader built from these attributes."""

    def __init__(self, dataset=None, _config=None, _called=frozenset(), **torch_kwargs):
        from ..dataloader import _LoaderBase

        if _config is None:
            found = find_loader(dataset, torch_kwargs.get("sampler"), torch_kwargs.get("batch_sampler"))
            if found is not None:
                _config, _called = found
        if _config is None:
            from ..pipeline.config import LoaderConfig

            if dataset is None:
                raise TypeError("DeepLakeDataLoader needs a dataset: use ds.dataloader()")
            _config = LoaderConfig(dataset=dataset)
        if torch_kwargs:
            _config = loader_args(_config, torch_kwargs)
        _LoaderBase.__init__(self, None, _config, _called)
        # a plain instance attribute (torch's DataLoader has one): frameworks that re-create the loader
        # from vars(loader) pass it back, and it carries our config
        object.__setattr__(self, "dataset", RowsDataset(_config, _called))
        object.__setattr__(self, "_parts", {})

    def with_torch_options(self, **kwargs):
        """A new loader with torch DataLoader keyword arguments applied (``pin_memory``, ``timeout``,
        ``worker_init_fn``, ``generator``, ``num_workers``, ... as torch's DataLoader takes them)."""
        return type(self)(None, self._config, self._called, **kwargs)

    def _part(self, name, make):
        parts = self._parts
        if name not in parts:
            parts[name] = make()
        return parts[name]

    @property
    def sampler(self):
        cfg = self._config
        cls = ShardSampler if (cfg.shard is not None or cfg.distributed) else RowSampler
        return self._part("sampler", lambda: cls(cfg, cfg.generator, self.dataset._expect))

    @property
    def batch_sampler(self):
        return self._part("batch_sampler", lambda: BatchSampler(self.sampler, self._config.batch_size,
                                                                self._config.drop_last))

    @property
    def collate_fn(self):
        cfg = self._config
        if cfg.mode is None and cfg.collate_fn is None:
            return None  # deeplake 3.9.52's answer for a bare ds.dataloader()
        return self._part("collate_fn", lambda: Collate(cfg))

    @property
    def prefetch_factor(self):
        return self._config.prefetch_factor if self._config.num_workers > 0 else None

    pin_memory = property(lambda self: self._config.pin_memory)
    timeout = property(lambda self: self._config.timeout)
    persistent_workers = property(lambda self: self._config.persistent_workers)
    generator = property(lambda self: self._config.generator)
    pin_memory_device = property(lambda self: "")
    in_order = property(lambda self: True)  # batches always come in order

    @property
    def worker_init_fn(self):
        return self._config.worker_init_fn

    @worker_init_fn.setter
    def worker_init_fn(self, fn):  # torch allows it; Lightning sets it for seed_everything(workers=True)
        self._reconfigure(worker_init_fn=checked_worker_init_fn(fn))

    @property
    def multiprocessing_context(self):
        return mp.get_context("spawn") if self._config.num_workers > 0 else None

    @multiprocessing_context.setter
    def multiprocessing_context(self, ctx):
        checked_context(ctx)

    def close(self):
        from ..dataloader import _LoaderBase

        dataset = self.__dict__.get("dataset")
        if isinstance(dataset, RowsDataset):
            dataset._close_ahead()
        _LoaderBase.close(self)

    def _reconfigure(self, **changes):
        """Change options of a loader that has not started an epoch (torch's rule for setters)."""
        self.close()
        cfg = self._config.with_(**changes)
        object.__setattr__(self, "_config", cfg)
        object.__setattr__(self, "dataset", RowsDataset(cfg, self._called))
        self._parts.clear()

    @property
    def _auto_collation(self):
        return True

    @property
    def _index_sampler(self):
        return self.batch_sampler

    def __iter__(self):
        from ..dataloader import _LoaderBase

        batches = _LoaderBase.__iter__(self)
        if self._config.pin_memory and self._config.mode == "pytorch" and accelerator_available():
            return (pin(b) for b in batches)
        return batches
