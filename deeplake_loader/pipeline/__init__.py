"""The data path behind a DeepLakeDataLoader, one way:

    plan (rows of the epoch, fetch steps) -> fetch (one load per chunk, compressed samples held
    while shuffled) -> decode (native, pooled memory) -> transform + collate (calling process or
    worker processes) -> prefetch queue -> iterator

``Pipeline(config)``: iterating it yields one epoch of collated batches; iterating again starts the
next epoch (new shuffle). ``close()`` stops threads and workers and frees shared memory. An epoch
runs a ``state.Schedule`` (its plan, possibly resumed mid-epoch: ``planned``, set by the loader's
``state.track``); the random streams of batch b (fused crops, ``random.batch_scope`` around the
transforms, here or in a worker) are seeded by (epoch, rank, b), never by the batches before it.
With ``ignore_errors`` the fetch and decode stages leave out the samples that cannot be read or
decoded, the Assembler those whose transform raises, and ``refill.batches`` cuts what is kept into
full batches, recording every skip in ``summary`` (pipeline/refill.py).
"""

from __future__ import annotations

import weakref

import numpy as np

from .. import random as dl_random
from ..errors import EmptyTensorError
from . import plan, refill, state
from .background import background
from .collate import assembler
from .config import LoaderConfig
from .fetch import Column, Decoder
from .memory import BufferPool
from .window import ChunkWindow, split_budget

__all__ = ["LoaderConfig", "Pipeline", "plan"]

class Pipeline:
    def __init__(self, cfg: LoaderConfig, summary=None):
        self.cfg = cfg
        # what ignore_errors skipped (the loader's, so that it outlives a close())
        self.summary = summary if summary is not None or not cfg.ignore_errors else refill.Summary(cfg.verbose)
        ds = cfg.dataset
        names = plan.selected_tensors(cfg)
        for name in names:
            if len(ds._reader(name)) == 0:
                raise EmptyTensorError(f"the dataset has an empty tensor {name} (0 samples), a dataloader can't be "
                                       "created over it. Please either populate the tensor or pass tensors=[...] that "
                                       f"excludes this tensor (tensors: {list(ds.tensors)})")
        per_tensor = cfg.transform if isinstance(cfg.transform, dict) else {}
        self.columns = {n: Column(ds, n, cfg.decode_method.get(n, "numpy"), per_tensor.get(n), cfg.mode) for n in names}
        self.assemble = assembler(cfg, self.columns)  # columns -> the batch (transforms, collate, index)
        self.primary = plan.primary_tensor(cfg, names)
        self.depth = max(1, cfg.prefetch_factor) * max(1, cfg.num_workers)  # batches ahead, per stage
        # batches that can hold pooled memory at once: decoded and queued, at the workers, being
        # decoded, being collated, and the caller's
        self.pool = BufferPool(shared=cfg.num_workers > 0, slots=2 * self.depth + 3)
        self.decoder = Decoder(self.pool, cfg.num_threads)
        self.epoch = 0
        self.planned = None  # the state.Schedule the next epoch runs (None: from its start)
        self._workers = None  # the worker processes: started by the first epoch that needs them, kept until close()
        self._stops = []  # stop events of the running stage threads
        self._finalizer = weakref.finalize(self, Pipeline._shutdown, self._stops, self.pool)

    def __len__(self) -> int:
        return plan.num_batches(self.cfg)

    # -------------------------------------------------------------------- fetch and decode
    def _decoded_batches(self, sched):
        """Decode stage: batches of raw values from the fetch stage (its own thread, so chunk reads
        overlap the native decode) -> decoded columns."""
        fetched = background(lambda: self._raw_batches(sched), 2, self._stops, f"deeplake_loader-fetch-{sched.epoch}")
        for i, (rows, raw) in enumerate(fetched):
            seed = sched.seed("transform", i)
            if self.cfg.ignore_errors:  # bad samples left out; what was kept and skipped goes to refill.batches
                rows, columns, kept, skipped = refill.decode(self, rows, raw, seed)
                sched.decoded[i] = (kept, skipped)
                yield rows, columns
                continue
            rng = np.random.default_rng(seed)
            yield rows, {name: self.decoder.column(col, raw[name], rows, rng) for name, col in self.columns.items()}

    def _raw_batches(self, sched):
        """Fetch stage: the schedule's steps, one load per chunk of the primary tensor (read ahead by
        the fetch window); yields (rows, {tensor: stored bytes or values}) per batch."""
        cfg = self.cfg
        order = sched.order
        if self.primary is None or not len(order):
            return
        prim = self.columns[self.primary]
        for col in self.columns.values():
            if col is not prim:
                col.warm()
        steps = sched.steps
        names = [] if prim.reader.tiles else [name for name, positions, _ in steps if name is not None and len(positions)]
        window_bytes = split_budget(int(cfg.buffer_size * 1e6), cfg.shuffle)[1]
        pending, ready = {}, []
        sizes = sched.batch_sizes()
        need = next(sizes, None)
        with ChunkWindow(prim.reader, names, max_bytes=window_bytes,
                         window=cfg.dataset._shared.get("fetch_window")) as chunks:
            for name, positions, emitted in steps:
                if name is not None and len(positions):
                    pending.update(self._load(name, order, positions, chunks))
                ready.extend(emitted.tolist())
                while need is not None and len(ready) >= need:
                    yield self._gather(order, ready[:need], pending, sched)
                    ready = ready[need:]
                    need = next(sizes, None)

    def _load(self, name, order, positions, chunks=None):
        """(position, stored bytes or value) of the rows at ``positions``, all in chunk ``name``
        (taken from the fetch window ``chunks``, or read now: a resumed epoch's deferred chunk)."""
        prim = self.columns[self.primary]
        rows = order[positions]
        try:
            if prim.reader.tiles:
                values = prim.raw(rows)
            else:
                _, locals_ = prim.reader.enc.locate(rows)
                chunk = chunks.take(name, rows) if chunks is not None else prim.reader.load_chunk(name)
                values = prim.raw_from_chunk(chunk, rows, locals_)
        except refill.READ_ERRORS as e:
            if not self.cfg.ignore_errors:
                raise
            values = refill.read(prim.raw, rows, e)  # the rows that can be read, Bad markers for the others
        return zip(positions.tolist(), values)

    def _gather(self, order, positions, pending, sched):
        for p in positions:
            if p not in pending and (owed := sched.claim(p)) is not None:  # a resumed epoch's deferred chunk
                pending.update(self._load(owed[0], order, owed[1]))
        rows = order[np.asarray(positions, dtype=np.int64)]
        return rows, {name: [pending.pop(p) for p in positions] if name == self.primary else self._raw(col, rows)
                      for name, col in self.columns.items()}

    def _raw(self, col, rows):
        """A column's stored values of ``rows`` (with ignore_errors, ``refill.Bad`` for those that
        cannot be read)."""
        return refill.read(col.raw, rows) if self.cfg.ignore_errors else col.raw(rows)

    # ------------------------------------------------------------------------------ consumer
    def __iter__(self):
        self.epoch += 1
        if not self.cfg.ignore_errors:
            return self._epoch(self.epoch)
        sched = self.planned
        if sched is None or sched.epoch != self.epoch:
            sched = state.schedule(self, self.epoch)
        self.planned = sched  # what _epoch runs
        return refill.batches(self, self._epoch(self.epoch), sched)

    def _epoch(self, epoch):
        cfg = self.cfg
        sched, self.planned = self.planned, None
        if sched is None or sched.epoch != epoch:
            sched = state.schedule(self, epoch)
        # workers first (a fork then copies a process whose decode stage has not filled the pool yet)
        workers = self._worker_pool() if cfg.num_workers > 0 and self.assemble.runs_user_code else None
        decoded = background(lambda: self._decoded_batches(sched), self.depth, self._stops,
                             f"deeplake_loader-decode-{epoch}")
        try:
            if workers is not None:
                yield from self._through_workers(decoded, workers, sched)
            else:
                for i, item in enumerate(decoded):
                    yield self.finish(*item, seed=sched.seed("scope", i))
        finally:
            decoded.close()

    def finish(self, rows, columns, seed):
        """The batch of decoded ``columns``: transforms and collate, with the batch's random streams
        seeded from ``seed`` (``random.batch_scope``). Runs where the user's code runs: the thread
        that iterates, or a worker process; never a background thread (random.py)."""
        if not self.assemble.runs_user_code:
            return self.assemble(columns, rows)
        with dl_random.batch_scope(seed):  # the batch's random streams (resumable, state.py)
            return self.assemble(columns, rows)

    def unit_now(self, rows, seed, scope_seed, epoch=None):
        """ignore_errors: the ``collate.Unit`` of exactly ``rows``, read, decoded and assembled now
        on this thread (crops from ``seed``, transforms under ``scope_seed``), its ``kept``
        positions counted in ``rows``; every skip recorded in ``summary`` under ``epoch``."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        raw = {name: self._raw(col, rows) for name, col in self.columns.items()}
        kept_rows, columns, kept, skipped = refill.decode(self, rows, raw, seed)
        unit = self.finish(kept_rows, columns, scope_seed)
        kept = np.asarray(kept, np.int64)
        records = skipped + [(int(kept[j]), record) for j, record in unit.skipped]
        for _, record in sorted(records, key=lambda r: r[0]):
            record.epoch = epoch
            self.summary.add(record)
        unit.kept = kept[unit.kept]
        return unit

    def decode_rows(self, rows, seed):
        """The decoded columns of exactly ``rows`` (source row ids), read and decoded now on this
        thread, fused crops drawn from ``seed``: for a torch DataLoader a framework built from our
        sampler and dataset parts (``finish`` then makes the batch). No user code runs here."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        rng = np.random.default_rng(seed)
        return {name: self.decoder.column(col, col.raw(rows), rows, rng) for name, col in self.columns.items()}

    def _worker_pool(self):
        """The loader's worker processes: started once (a fork, or an interpreter that imports what
        the transform needs, is not paid again per epoch; workers.py), whatever persistent_workers
        says; a pool that failed is replaced."""
        from .workers import WorkerPool

        if self._workers is None or self._workers.closed:
            self._workers = WorkerPool(self.cfg.num_workers, self.assemble, worker_init_fn=self.cfg.worker_init_fn,
                                       timeout=self.cfg.timeout, start_method=self.cfg.start_method)
        return self._workers

    def _through_workers(self, decoded, workers, sched):
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
                workers.submit(gen, sent, rows_of[sent], columns, self.pool, sched.seed("scope", sent))
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
        if self._workers is not None:
            self._workers.close()
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
