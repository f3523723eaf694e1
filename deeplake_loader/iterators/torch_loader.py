"""Our loader as a torch DataLoader: torch's attributes with torch's meanings, and torch's
``__init__`` keyword arguments, which frameworks pass when they re-create a loader.

``TorchShape`` is mixed into the loader class (dataloader.py) when torch is installed: ``dataset``,
``sampler``, ``batch_sampler``, ``collate_fn`` are the parts of ``iterators/torch_parts.py``;
``prefetch_factor``, ``pin_memory``, ``timeout``, ``persistent_workers``, ``generator``,
``worker_init_fn`` (settable), ``multiprocessing_context`` (the context our workers start with:
fork on Linux; settable) come from the config. ``loader_args`` turns torch DataLoader keyword arguments into our config: a
DistributedSampler found in ``sampler`` or ``batch_sampler`` (what Lightning injects under DDP)
becomes our own sharding with its rank and world size (contiguous shards, equal batch counts);
torch's Sequential/Random samplers turn the shuffle off/on; any other sampler is refused by name.
"""

from __future__ import annotations


from torch.utils.data import BatchSampler, DistributedSampler, RandomSampler, SequentialSampler

from .torch import accelerator_available, pin
from .torch_parts import Collate, RowSampler, RowsDataset, ShardSampler

_TORCH_KWARGS = ("batch_size", "shuffle", "sampler", "batch_sampler", "num_workers", "collate_fn", "pin_memory",
                 "drop_last", "timeout", "worker_init_fn", "multiprocessing_context", "generator", "prefetch_factor",
                 "persistent_workers", "pin_memory_device", "in_order")


# ------------------------------------------------------------------------- re-creation arguments
def _samplers_in(*objs):
    """Samplers reachable from a framework's sampler / batch sampler: wrappers keep the original as
    ``sampler``, ``batch_sampler`` or ``_batch_sampler`` (torch's BatchSampler, Accelerate's
    BatchSamplerShard, Lightning's _IndexBatchSamplerWrapper) or as ``dataset._sampler``
    (Lightning's DistributedSamplerWrapper). Only attributes an object really has are followed (its
    own or its class's), never ones a ``__getattr__`` makes up (a Deep Lake dataset's tensors)."""
    seen, todo = [], list(objs)
    while todo and len(seen) < 32:
        o = todo.pop(0)
        if o is None or any(o is s for s in seen):
            continue
        seen.append(o)
        if not isinstance(o, (RowsDataset, RowSampler)):
            own = getattr(o, "__dict__", {})
            todo.extend(getattr(o, a, None) for a in ("sampler", "batch_sampler", "_batch_sampler", "dataset",
                                                      "_sampler") if a in own or hasattr(type(o), a))
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
    if kwargs.get("multiprocessing_context") is not None:
        from ..pipeline.workers import start_method_of

        changes["start_method"] = start_method_of(kwargs["multiprocessing_context"])
    if kwargs.get("in_order") is False:
        raise ValueError("in_order=False is not supported: DeepLakeDataLoader always yields batches in order")
    return cfg.with_(**changes) if changes else cfg


def checked_worker_init_fn(fn):
    if fn is not None and not callable(fn):
        raise ValueError(f"worker_init_fn must be callable, got {type(fn).__name__}")
    return fn


def _named(collate, fn):
    """deeplake exposes a function here: ours carries its ``__name__`` (the user's function's, else
    ``collate_fn`` as deeplake's default is called)."""
    collate.__name__ = getattr(fn, "__name__", "collate_fn")
    return collate


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
        skips = self._skips() if _config.ignore_errors else None
        object.__setattr__(self, "dataset", RowsDataset(_config, _called, skips))
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
        if self._config.unbatched:  # ds.pytorch(batch_size=None): torch's "no automatic batching"
            return None
        return self._part("batch_sampler", lambda: BatchSampler(self.sampler, self._config.batch_size,
                                                                self._config.drop_last))

    @property
    def collate_fn(self):
        cfg = self._config
        if cfg.mode in (None, "numpy") and cfg.collate_fn is None:
            return None  # deeplake 3.9.52's answer for a bare ds.dataloader() and for .numpy()
        return self._part("collate_fn", lambda: _named(Collate(cfg), cfg.collate_fn))

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
        skips = self._skips() if cfg.ignore_errors else None
        object.__setattr__(self, "dataset", RowsDataset(cfg, self._called, skips))
        self._parts.clear()

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        from ..dataloader import _LoaderBase

        batches = _LoaderBase.__iter__(self)
        if self._config.pin_memory and self._config.mode == "pytorch" and accelerator_available():
            return (pin(b) for b in batches)
        return batches
