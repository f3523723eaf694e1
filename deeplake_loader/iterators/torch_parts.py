"""The parts of a torch DataLoader that our loader is made of, for frameworks that rebuild it.

PyTorch Lightning re-creates the loader's class with a DistributedSampler for DDP
(``use_distributed_sampler``); Hugging Face Accelerate builds a plain torch
``DataLoader(loader.dataset, batch_sampler=loader.batch_sampler, collate_fn=loader.collate_fn,
num_workers=loader.num_workers, ...)``. These parts keep our data path in such a rebuilt loader:

* ``RowSampler`` (``loader.sampler``): the rows of one epoch in the order the loader yields them
  (view, query, sample_by, shard, offset, the chunk-aware shuffle buffer), as a torch Sampler of
  positions in ``loader.dataset`` (the view's rows after the query; torch's index space). Each
  position is a ``Position``: an int that also carries its epoch, its place in the epoch and the
  root seed, so the batch made of it gets augmentation seeded by (seed, epoch, rank, batch) in
  whichever process decodes it (torch's worker processes, Accelerate's shards).
  ``loader.batch_sampler`` is torch's own ``BatchSampler`` over it, which cuts exactly the batches
  our pipeline yields. A sharded loader (``distributed=True``, or a shard a framework gave) has a
  ``ShardSampler``, a DistributedSampler, so Lightning sees it as already sharded.
* ``RowsDataset`` (``loader.dataset``): the Deep Lake dataset (its attributes and ``[]`` are the
  Deep Lake view's) that is also a map-style torch Dataset: ``len`` is the rows the loader reads
  from (after a query), and ``__getitems__(positions)`` reads and natively decodes those rows as
  one finished batch (transforms, collate, ``index`` = source row ids as always). In the process
  that owns the loader, ``Lookahead`` decodes the batches its sampler just yielded on a background
  thread, so decoding overlaps the training step as in our own loop; the user's transforms and
  collate still run in the thread that asked for the batch (they may draw from the process-wide
  random generators, which a background thread must never reseed: random.py).
* ``Collate`` (``loader.collate_fn``): passes that finished batch through; merges plain samples
  with the user's collate_fn (its result untouched) or the default one (pipeline/collate.py).

``iterators/torch_loader.py`` attaches them to the loader class.
"""

from __future__ import annotations

import os
import zlib

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from .. import random as dl_random
from ..pipeline import plan
from ..pipeline.background import background
from ..pipeline.collate import default_collate
from . import converter, converter_for

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
        # torch counts epochs from 0 (set_epoch), our loop from 1: sampler epoch e is the loader's e + 1,
        # so a DataLoader rebuilt from these parts yields what iterating the loader yields
        epoch, self.epoch = self.epoch + 1, self.epoch + 1
        cfg = self._epoch_config()
        rank = plan.world(cfg)[0]
        tag = EpochTag(dl_random.root(cfg.seed), epoch, rank)
        positions = [Position(p, tag, k) for k, p in enumerate(positions_of(cfg, self.rows(epoch, cfg)).tolist())]
        if self.on_epoch is not None:
            self.on_epoch(positions)
        return iter(positions)

    def _epoch_config(self):
        if self.generator is not None:  # the root of this epoch's random streams, the same in every process
            return self.cfg.with_(seed=int(torch.randint(0, 2**62, (), dtype=torch.int64, generator=self.generator)))
        return self.cfg

    def rows(self, epoch: int, cfg=None) -> np.ndarray:
        """The source row ids of the loader's ``epoch`` (counted from 1) in order."""
        cfg = cfg if cfg is not None else self._epoch_config()
        rank, world_size = plan.world(cfg)
        order = plan.epoch_order(cfg, epoch, rank, world_size)
        primary = plan.primary_tensor(cfg, plan.selected_tensors(cfg))
        if primary is None:
            return order
        return plan.yield_order(cfg, cfg.dataset._reader(primary), order, epoch, rank)


class EpochTag:
    """What the positions of one sampled epoch share: the root seed, the epoch and the rank."""

    __slots__ = ("root", "epoch", "rank")

    def __init__(self, root: int, epoch: int, rank: int):
        self.root, self.epoch, self.rank = int(root), int(epoch), int(rank)

    def __reduce__(self):
        return EpochTag, (self.root, self.epoch, self.rank)


class Position(int):
    """A position in ``loader.dataset`` (an int, as torch's samplers yield) that knows the epoch it
    was drawn for (``tag``) and its place ``k`` in that epoch's order: torch's BatchSampler,
    Accelerate's and Lightning's batch wrappers keep the objects, and they pickle to torch's worker
    processes, so a batch's random streams follow from its first position, in any process."""

    def __new__(cls, value, tag: EpochTag, k: int):
        obj = int.__new__(cls, value)
        obj.tag, obj.k = tag, k
        return obj

    def __reduce__(self):
        return Position, (int(self), self.tag, self.k)


def batch_seeds(cfg, positions) -> tuple:
    """(crop seed, transform-scope seed) of the batch made of ``positions``: from (root, epoch,
    rank, batch number) when they came from our sampler (the batch number is the first position's
    place in the epoch over the batch size: the same streams as our own loop's batch of that
    number); otherwise, with no epoch to tell, from the positions themselves under the loader's
    root (the same crops each epoch, but the same in every process)."""
    first = positions[0] if len(positions) else None
    if isinstance(first, Position):
        t = first.tag
        coords, root = (t.epoch, t.rank, 0, first.k // max(1, cfg.batch_size or 1)), t.root
    else:
        digest = zlib.crc32(np.asarray(positions, dtype=np.int64).tobytes())
        coords, root = (0, plan.world(cfg)[0], 0, len(positions), digest), dl_random.root(cfg.seed)
    return (dl_random.stream("transform", *coords, root=root), dl_random.stream("scope", *coords, root=root))


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

    def __init__(self, cfg, called=frozenset(), summary=None):
        self._cfg, self._called = cfg, called
        self._summary = summary  # the loader's (ignore_errors), in the process that owns it
        self._owner_pid = os.getpid()
        self._rows = None  # plan.base_rows(cfg), on first use
        self._state = None  # (pid, pipeline, rng, convert), made in the process that reads
        self._ahead = None  # Lookahead over the epoch the loader's sampler last yielded

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_cfg", "_called", "_summary", "_owner_pid", "_rows", "_state", "_ahead"):
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
        pipe, convert = self._reader_state()
        crop_seed, scope_seed = batch_seeds(self._cfg, positions)
        if self._cfg.ignore_errors:  # bad samples left out of this batch: torch's batch sampler chose its rows
            from ..pipeline import refill

            return Finished(convert(refill.whole(pipe, pipe.unit_now(base[pos], crop_seed, scope_seed), base[pos])))
        columns = None
        if self._ahead is not None and os.getpid() == self._owner_pid:  # (a forked worker inherits it: unused)
            columns = self._ahead.take(pos, crop_seed)
            if columns is None:
                self._close_ahead()  # asked for something else: decode directly from now on
        rows = base[pos]
        if columns is None:
            columns = self._decode(pos, crop_seed)
        return Finished(convert(pipe.finish(rows, columns, scope_seed)))

    def _decode(self, pos, crop_seed):
        """The decoded columns of the rows at ``pos`` (no user code: safe on a background thread)."""
        pipe, _ = self._reader_state()
        return pipe.decode_rows(self._base()[pos], crop_seed)

    def _expect(self, positions):
        """The loader's sampler starts an epoch: get ready to decode its batches ahead."""
        self._close_ahead()
        if os.getpid() == self._owner_pid and not self._cfg.ignore_errors:
            self._ahead = Lookahead(self, positions, self._cfg.batch_size, self._cfg.drop_last)

    def _close_ahead(self):
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.close()

    def _reader_state(self):
        if self._state is None or self._state[0] != os.getpid():
            from ..pipeline import Pipeline

            # this process decodes; no pool of our own, private memory; in a torch worker process one
            # decode thread, as torch gives each worker one intra-op thread
            cfg = self._cfg.with_(num_workers=0)
            if torch.utils.data.get_worker_info() is not None:
                cfg = cfg.with_(num_threads=1)
            summary = self._summary if os.getpid() == self._owner_pid else None
            self._state = (os.getpid(), Pipeline(cfg, summary=summary), converter_for(cfg))
        return self._state[1:]

    def __reduce__(self):
        # torch's spawn workers pickle the dataset: the config, with its transforms (lambdas and
        # closures too), travels by value, its root seed pinned (a spawned process has another)
        cfg = self._cfg.with_(seed=dl_random.root(self._cfg.seed))
        return _by_value, (RowsDataset, _dumps((cfg, self._called)))

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
        expected = [(np.asarray(c, dtype=np.int64), batch_seeds(dataset._cfg, c)[0]) for c in cuts]
        self._expected = expected[::-1]
        self._stops = []
        self._batches = background(lambda: ((pos, seed, dataset._decode(pos, seed)) for pos, seed in expected),
                                   2, self._stops, "deeplake_loader-lookahead")

    def take(self, pos, crop_seed):
        """The decoded columns of the batch at ``pos`` (its crops drawn from ``crop_seed``) if it is
        the next one expected, else None."""
        if not self._expected or self._expected[-1][1] != crop_seed or not np.array_equal(self._expected[-1][0], pos):
            return None
        self._expected.pop()
        done, seed, columns = next(self._batches)
        if seed != crop_seed or not np.array_equal(done, pos):  # in order; never hand over other rows
            raise RuntimeError(f"lookahead out of step: decoded positions {done[:4]}..., asked for {pos[:4]}...")
        return columns

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
        if self.fn is not None:
            return self.fn(data)  # a collate_fn's result is the batch, untouched (pipeline/collate.py)
        return converter(self._cfg.mode)(default_collate(list(data)))

    def __repr__(self):
        return f"Collate(fn={self.fn!r})"
