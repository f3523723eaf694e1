"""Worker processes for per-sample transforms and collation (num_workers > 0).

Decoded batches reach workers through shared memory (the pool's /dev/shm blocks, mapped by path);
only small per-row values (labels, text) and the transformed results travel pickled. Workers are
started with the 'spawn' method: a forked child of a process that used OpenMP (the decode kernels)
would hang in libgomp. A worker that raises sends the exception back with its traceback; a worker
that dies is noticed within a fraction of a second and reported, never waited on forever.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import queue
import signal
import traceback
import weakref

import numpy as np

from ..errors import TransformError, WorkerError


def _worker_main(task_q, result_q, blob):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    from ..random import batch_scope
    from .collate import apply_transforms, collate
    from .memory import map_shared

    try:
        transform, per_tensor, collate_fn = pickle.loads(blob)
    except BaseException as e:  # noqa: BLE001 - e.g. the transform's module is not importable here
        result_q.put((None, False, (pickle.dumps(WorkerError(
            f"a worker process could not load the transform ({type(e).__name__}: {e}); worker processes import "
            "it by module name, so it must live in an importable module")), traceback.format_exc())))
        return
    maps: dict = {}
    while True:
        task = task_q.get()
        if task is None:
            break
        batch_id, rows, payload, seed = task
        try:
            columns = {}
            for name, (kind, value) in payload.items():
                if kind == "shm":
                    path, shape, dtype = value
                    columns[name] = map_shared(path, shape, dtype, maps)
                else:
                    columns[name] = value
            with batch_scope(seed):  # the batch's random streams, whichever worker runs it
                batch = collate(apply_transforms(columns, rows, transform, per_tensor), collate_fn, rows)
            result = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
            result_q.put((batch_id, True, result))
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the main process
            try:
                err = pickle.dumps(e)
                pickle.loads(err)
            except Exception:  # noqa: BLE001 - an exception that does not survive pickling
                err = pickle.dumps(TransformError(f"{type(e).__name__}: {e}", traceback_text=traceback.format_exc()))
            result_q.put((batch_id, False, (err, traceback.format_exc())))


def _describe(exitcode) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class WorkerPool:
    def __init__(self, num_workers: int, transform, per_tensor, collate_fn):
        try:
            blob = pickle.dumps((transform, per_tensor, collate_fn))
        except Exception as e:  # noqa: BLE001 - pickling raises many types
            raise WorkerError(f"the transform or collate_fn cannot be sent to num_workers={num_workers} worker "
                              f"processes because it cannot be pickled ({type(e).__name__}: {e}). Define it at "
                              "module level (not a lambda or a local function), or use num_workers=0.") from None
        ctx = mp.get_context("spawn")
        self.result_q = ctx.Queue()
        self.task_qs = [ctx.Queue() for _ in range(num_workers)]
        self.procs = []
        for i, q in enumerate(self.task_qs):
            p = ctx.Process(target=_worker_main, args=(q, self.result_q, blob), daemon=True,
                            name=f"deeplake_loader-worker-{i}")
            p.start()
            self.procs.append(p)
        self._next = 0
        self.closed = False
        self._finalizer = weakref.finalize(self, _stop, self.procs, self.task_qs + [self.result_q])

    def submit(self, batch_id, rows, payload, seed):
        self.task_qs[self._next % len(self.task_qs)].put((batch_id, np.asarray(rows), payload, seed))
        self._next += 1

    def result(self):
        """(batch_id, result) of the next finished batch; raises the worker's error, or WorkerError
        if a worker died."""
        while True:
            try:
                batch_id, ok, data = self.result_q.get(timeout=0.1)
            except queue.Empty:
                for i, p in enumerate(self.procs):
                    if p.exitcode is not None:
                        self.close()
                        raise WorkerError(f"dataloader worker {i} (pid {p.pid}) exited unexpectedly "
                                          f"({_describe(p.exitcode)})") from None
                continue
            if ok:
                return batch_id, pickle.loads(data)
            err, tb = data
            self.close()
            exc = pickle.loads(err)
            if isinstance(exc, (TransformError, WorkerError)):
                raise exc
            raise TransformError(f"a worker raised {type(exc).__name__}: {exc}", traceback_text=tb) from exc

    def close(self):
        self.closed = True
        self._finalizer()


def _stop(procs, queues):
    """Ask every worker to exit, then terminate the ones that do not; never blocks for long."""
    for q, p in zip(queues, procs):
        if p.is_alive():
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
    for p in procs:
        p.join(timeout=2)
        if p.is_alive():
            p.terminate()
            p.join(timeout=2)
    for q in queues:
        q.cancel_join_thread()  # a dead reader must not block us on unflushed items
        q.close()
