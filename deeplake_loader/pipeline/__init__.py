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
from .collate import apply_transforms, collate, fast_batch
from .config import LoaderConfig
from .fetch import Column, Decoder
from .memory import BufferPool
from .window import ChunkWindow, split_budget

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
        self.per_tensor = {n: c.transform for n, c in self.columns.items() if c.transform is not None}
        self.transform = cfg.transform if callable(cfg.transform) and not isinstance(cfg.transform, dict) else None
        self.primary = plan.primary_tensor(cfg, names)
        self.pool = BufferPool(shared=cfg.num_workers > 0)
        self.decoder = Decoder(self.pool, cfg.num_threads)
        self.epoch = 0
        self._workers = None
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
        """Fetch stage: the plan's steps, one load per chunk of the primary tensor (read ahead by the
        fetch window); yields (rows, {tensor: stored bytes or values}) per batch."""
        cfg = self.cfg
        order = plan.epoch_order(cfg, epoch)
        rank = plan.world(cfg)[0]
        if self.primary is None or not len(order):
            return
        prim = self.columns[self.primary]
        for col in self.columns.values():
            if col is not prim:
                col.warm()
        reservoir, window_bytes = split_budget(int(cfg.buffer_size * 1e6), cfg.shuffle)
        steps = plan.steps(prim.reader, order, shuffle=cfg.shuffle, budget_bytes=reservoir,
                           seed=dl_random.stream("shuffle", epoch, rank))
        names = [] if prim.reader.tiles else [name for name, positions, _ in steps if name is not None and len(positions)]
        pending, ready, bs = {}, [], cfg.batch_size
        with ChunkWindow(prim.reader, names, max_bytes=window_bytes, window=cfg.dataset._shared.get("fetch_window")) as chunks:
            for name, positions, emitted in steps:
                if name is not None and len(positions):
                    rows = order[positions]
                    if prim.reader.tiles:
                        values = prim.raw(rows)
                    else:
                        _, locals_ = prim.reader.enc.locate(rows)
                        values = prim.raw_from_chunk(chunks.take(name, rows), rows, locals_)
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
        depth = max(1, cfg.prefetch_factor) * max(1, cfg.num_workers)
        decoded = background(lambda: self._decoded_batches(epoch), depth, self._stops,
                             f"deeplake_loader-decode-{epoch}")
        try:
            if cfg.num_workers > 0 and (self.transform is not None or self.per_tensor or cfg.collate_fn):
                yield from self._through_workers(decoded, depth)
            else:
                for item in decoded:
                    yield self._finish(*item)
        finally:
            decoded.close()
            if not cfg.persistent_workers:
                self._close_workers()

    def _finish(self, rows, columns):
        if self.transform is None and not self.per_tensor and self.cfg.collate_fn is None:
            batch = fast_batch(columns)
        else:
            batch = collate(apply_transforms(columns, rows, self.transform, self.per_tensor), self.cfg.collate_fn, rows)
        return self._with_index(batch, rows)

    def _with_index(self, batch, rows):
        if self.cfg.return_index and isinstance(batch, dict):
            batch["index"] = np.asarray(rows, dtype=np.int64).reshape(-1, 1)
        return batch

    def _through_workers(self, decoded, depth):
        from .workers import WorkerPool

        if self._workers is None or self._workers.closed:
            self._workers = WorkerPool(self.cfg.num_workers, self.transform, self.per_tensor, self.cfg.collate_fn)
        workers = self._workers
        held, done, next_id, sent, finished = {}, {}, 0, 0, False
        while True:
            while not finished and sent - next_id < depth:
                item = next(decoded, None)
                if item is None:
                    finished = True
                    break
                rows, columns = item
                payload = {}
                for name, v in columns.items():
                    path = self.pool.block_of(v) if isinstance(v, np.ndarray) else None
                    payload[name] = ("shm", (path, v.shape, v.dtype.str)) if path else ("obj", v)
                held[sent] = (rows, columns)  # keeps the shared blocks leased until the worker is done
                workers.submit(sent, rows, payload)
                sent += 1
            if next_id == sent and finished:
                return
            while next_id not in done:
                batch_id, result = workers.result()
                done[batch_id] = result
            rows, _ = held.pop(next_id)
            yield self._with_index(done.pop(next_id), rows)
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
