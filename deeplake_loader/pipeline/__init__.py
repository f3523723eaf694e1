"""The data path behind a DeepLakeDataLoader, one way:

    plan (rows of the epoch, fetch steps) -> fetch (one load per chunk, compressed samples held
    while shuffled) -> decode (native, pooled memory) -> transform + collate (calling process or
    worker processes) -> prefetch queue -> iterator

``Pipeline(config)``: iterating it yields one epoch of collated batches; iterating again starts the
next epoch (new shuffle). ``close()`` stops threads and workers and frees shared memory.
"""

from __future__ import annotations

import weakref

import numpy as np

from .. import random as dl_random
from ..errors import DeepLakeLoaderError
from . import plan
from .background import background
from .collate import assembler
from .config import LoaderConfig
from .fetch import Column, Decoder
from .memory import BufferPool

__all__ = ["LoaderConfig", "Pipeline", "plan"]

class Pipeline:
    def __init__(self, cfg: LoaderConfig):
        self.cfg = cfg
        ds = cfg.dataset
        names = plan.selected_tensors(cfg)
        for name in names:
            if len(ds._reader(name)) == 0:
                raise DeepLakeLoaderError(f"tensor '{name}' is empty (0 samples); leave it out with "
                                          f"tensors=[...] (tensors: {list(ds.tensors)})")
        per_tensor = cfg.transform if isinstance(cfg.transform, dict) else {}
        self.columns = {n: Column(ds, n, cfg.decode_method.get(n, "numpy"), per_tensor.get(n)) for n in names}
        self.assemble = assembler(cfg, self.columns)  # columns -> the batch (transforms, collate, index)
        self.primary = plan.primary_tensor(cfg, names)
        self.depth = max(1, cfg.prefetch_factor) * max(1, cfg.num_workers)  # batches ahead, per stage
        # batches that can hold pooled memory at once: decoded and queued, at the workers, being
        # decoded, being collated, and the caller's
        self.pool = BufferPool(shared=cfg.num_workers > 0, slots=2 * self.depth + 3)
        self.decoder = Decoder(self.pool, cfg.num_threads)
        self.epoch = 0
        self._workers = None  # the persistent_workers pool
        self._epoch_workers = set()  # every live pool, for close()
        self._stops = []  # stop events of the running stage threads
        self._finalizer = weakref.finalize(self, Pipeline._shutdown, self._stops, self.pool)

    def __len__(self) -> int:
        return plan.num_batches(self.cfg)

    # -------------------------------------------------------------------- fetch and decode
    def _decoded_batches(self, epoch):
        """Decode stage: batches of raw values from the fetch stage (its own thread, so chunk reads
        overlap the native decode) -> decoded columns."""
        rank = plan.world(self.cfg)[0]
        rng = np.random.default_rng(dl_random.stream("transform", epoch, rank))
        for rows, raw in background(lambda: self._raw_batches(epoch), 2, self._stops, f"deeplake_loader-fetch-{epoch}"):
            yield rows, {name: self.decoder.column(col, raw[name], rows, rng) for name, col in self.columns.items()}

    def _raw_batches(self, epoch):
        """Fetch stage: the plan's steps, one load per chunk of the primary tensor; yields (rows,
        {tensor: stored bytes or values}) per batch."""
        cfg = self.cfg
        order = plan.epoch_order(cfg, epoch)
        rank = plan.world(cfg)[0]
        if self.primary is None or not len(order):
            return
        prim = self.columns[self.primary]
        steps = plan.steps(prim.reader, order, shuffle=cfg.shuffle, budget_bytes=plan.buffer_bytes(cfg),
                           seed=dl_random.stream("shuffle", epoch, rank))
        pending, ready, bs = {}, [], cfg.batch_size
        for name, positions, emitted in steps:
            if name is not None and len(positions):
                rows = order[positions]
                if prim.reader.tiles:
                    values = prim.raw(rows)
                else:
                    _, locals_ = prim.reader.enc.locate(rows)
                    values = prim.raw_from_chunk(prim.reader.load_chunk(name), rows, locals_)
                pending.update(zip(positions.tolist(), values))
            ready.extend(emitted.tolist())
            while len(ready) >= bs:
                yield self._gather(order, ready[:bs], pending)
                ready = ready[bs:]
        if ready and not cfg.drop_last:
            yield self._gather(order, ready, pending)

    def _gather(self, order, positions, pending):
        rows = order[np.asarray(positions, dtype=np.int64)]
        return rows, {name: [pending.pop(p) for p in positions] if name == self.primary else col.raw(rows)
                      for name, col in self.columns.items()}

    # ------------------------------------------------------------------------------ consumer
    def __iter__(self):
        self.epoch += 1
        return self._epoch(self.epoch)

    def _epoch(self, epoch):
        cfg = self.cfg
        decoded = background(lambda: self._decoded_batches(epoch), self.depth, self._stops,
                             f"deeplake_loader-decode-{epoch}")
        workers = None
        try:
            if cfg.num_workers > 0 and self.assemble.runs_user_code:
                workers = self._worker_pool()
                yield from self._through_workers(decoded, workers)
            else:
                for item in decoded:
                    yield self._finish(*item)
        finally:
            decoded.close()
            if workers is not None and workers is not self._workers:  # this epoch's own workers
                workers.close()
                self._epoch_workers.discard(workers)

    def _finish(self, rows, columns):
        return self.assemble(columns, rows)

    def batch_of(self, rows, rng):
        """The finished batch of exactly ``rows`` (source row ids), read and decoded now on this
        thread: for a torch DataLoader a framework built from our sampler and dataset parts."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        return self._finish(rows, {name: self.decoder.column(col, col.raw(rows), rows, rng)
                                   for name, col in self.columns.items()})

    def _worker_pool(self):
        """The persistent pool (started once), or a pool of this epoch's own."""
        from .workers import WorkerPool

        if self.cfg.persistent_workers and self._workers is not None and not self._workers.closed:
            return self._workers
        workers = WorkerPool(self.cfg.num_workers, self.assemble, worker_init_fn=self.cfg.worker_init_fn,
                             timeout=self.cfg.timeout)
        self._epoch_workers = {w for w in self._epoch_workers if not w.closed} | {workers}
        if self.cfg.persistent_workers:
            self._workers = workers
        return workers

    def _through_workers(self, decoded, workers):
        """Batches out in order, ``depth`` in flight; tagged with this epoch's generation so that
        nothing an earlier epoch left at the workers is ever delivered here."""
        gen = workers.begin_epoch()
        rows_of, next_id, sent, finished = {}, 0, 0, False
        while True:
            while not finished and sent - next_id < self.depth:
                item = next(decoded, None)
                if item is None:
                    finished = True
                    break
                rows_of[sent], columns = item
                workers.submit(gen, sent, rows_of[sent], columns, self.pool)
                sent += 1
                del item, columns
            if next_id == sent and finished:
                return
            batch = workers.result(gen, next_id)
            del rows_of[next_id]
            yield batch
            next_id += 1

    # ------------------------------------------------------------------------------ lifetime
    def _close_workers(self):
        for workers in list(self._epoch_workers):
            workers.close()
        self._epoch_workers.clear()
        self._workers = None

    @staticmethod
    def _shutdown(stops, pool):
        for stop in list(stops):
            stop.set()
        pool.close()

    def close(self):
        for stop in list(self._stops):
            stop.set()
        self._close_workers()
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
