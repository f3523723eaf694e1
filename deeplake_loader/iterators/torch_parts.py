"""The parts of a torch DataLoader that our loader is made of, for frameworks that rebuild it.

PyTorch Lightning re-creates the loader's class with a DistributedSampler for DDP
(``use_distributed_sampler``); Hugging Face Accelerate builds a plain torch
``DataLoader(loader.dataset, batch_sampler=loader.batch_sampler, collate_fn=loader.collate_fn,
num_workers=loader.num_workers, ...)``. These parts keep our data path in such a rebuilt loader:

* ``RowSampler`` (``loader.sampler``): the rows of one epoch in the order the loader yields them
  (view, query, sample_by, shard, offset, the chunk-aware shuffle buffer), as a torch Sampler of
  positions in ``loader.dataset`` (the view's rows after the query; torch's index space).
  ``loader.batch_sampler`` is torch's own ``BatchSampler`` over it, which cuts exactly the batches
  our pipeline yields. A sharded loader (``distributed=True``, or a shard a framework gave) has a
  ``ShardSampler``, a DistributedSampler, so Lightning sees it as already sharded.
* ``RowsDataset`` (``loader.dataset``): the Deep Lake dataset (its attributes and ``[]`` are the
  Deep Lake view's) that is also a map-style torch Dataset: ``len`` is the rows the loader reads
  from (after a query), and ``__getitems__(positions)`` reads and natively decodes those rows as
  one finished batch (transforms, collate, ``index`` = source row ids as always). In the process
  that owns the loader, ``Lookahead`` decodes the batches its sampler just yielded on a background
  thread, so decoding overlaps the training step as in our own loop.
* ``Collate`` (``loader.collate_fn``): passes that finished batch through; merges plain samples
  with the user's collate_fn or the default one.

``iterators/torch_loader.py`` attaches them to the loader class.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from .. import random as dl_random
from ..pipeline import plan
from ..pipeline.background import background
from ..pipeline.collate import default_collate
from . import Batch, converter_for

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
        if self.generator is not None:  # the root of this epoch's random streams, the same in every process
            cfg = cfg.with_(seed=int(torch.randint(0, 2**62, (), dtype=torch.int64, generator=self.generator)))
        rank, world_size = plan.world(cfg)
        order = plan.epoch_order(cfg, epoch, rank, world_size)
        primary = plan.primary_tensor(cfg, plan.selected_tensors(cfg))
        if primary is None:
            return order
        return plan.yield_order(cfg, cfg.dataset._reader(primary), order, epoch, rank)


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
