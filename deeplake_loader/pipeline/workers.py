"""Worker processes for per-sample transforms and collation (num_workers > 0).

Started with the 'spawn' method: a forked child of a process that used OpenMP (the decode kernels)
would hang in libgomp. The protocol, written down once:

* Data. Decoded batches reach workers through the pool's shared memory (memory.py): before the
  first task that uses a block, the block's file descriptor goes to that worker over its own Unix
  socket (SCM_RIGHTS); a task names blocks by id. Small per-row values (labels, text) and the
  results travel pickled through multiprocessing queues. Each task says which blocks the pool has
  dropped since, so the worker unmaps them.
* Epochs. Every task and result carries the generation of the epoch that sent it.
  ``begin_epoch()`` starts a new generation; results of older ones are dropped when they arrive
  (their shared blocks stay leased until then, so no worker ever reads a block that is being
  refilled) and workers skip the older tasks still queued. An epoch that was replaced raises when
  it is resumed instead of waiting for results that will never come.
* Code. The batch assembler (transforms, collate_fn) is sent once per worker with cloudpickle
  (pipeline/shipping.py), so lambdas, closures and local functions work.
* Errors. A worker that raises sends the exception back with its traceback; a worker that dies is
  noticed within a fraction of a second and reported, never waited on forever.
* Lifetime. ``close()`` makes queued tasks stale, sends a ``None`` sentinel, joins for 2 s, then
  terminates. Workers die with the main process whatever kills it: each sets PR_SET_PDEATHSIG
  (SIGKILL) on Linux, and checks on every 1 s wait for work that its parent is still the process
  that started it. Linux sends the death signal when the *thread* that started the child ends, so
  workers are started by a thread of the pool that lives until ``close()``. multiprocessing's
  resource tracker (started with the first spawned child) exits once the main process and the
  workers are gone, removing the queues' semaphores.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import weakref

import numpy as np

from ..errors import DeepLakeLoaderError, TransformError, WorkerError
from . import shipping
from .memory import SHARED_MEMORY, map_block

_PARENT_CHECK_S = 1.0
_BLOCK_MSG = struct.Struct("qq")  # block id, bytes
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int):
    """SIGKILL this process when its parent thread ends (Linux), and exit now if the parent is
    already gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the wait loop's parent check still holds
            pass
    if os.getppid() != parent_pid:
        os._exit(0)


def _receive_blocks(sock, maps):
    """Map every block descriptor the main process has sent so far (it sends them before the task
    that needs them). An empty message means the main process is gone."""
    while sock is not None:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, _BLOCK_MSG.size, 1)
        except BlockingIOError:
            return
        if not msg:
            os._exit(0)
        block_id, nbytes = _BLOCK_MSG.unpack(msg)
        maps[block_id] = map_block(fds[0], nbytes)


def _error_record(e) -> tuple:
    try:
        err = pickle.dumps(e)
        pickle.loads(err)
    except Exception:  # noqa: BLE001 - an exception that does not survive pickling
        err = pickle.dumps(TransformError(f"{type(e).__name__}: {e}", traceback_text=traceback.format_exc()))
    return err, traceback.format_exc()


def _worker_main(parent_pid, task_q, result_q, sock, generation, blob, worker_id=0):
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    from ..random import batch_scope

    try:
        assemble, worker_init_fn = shipping.loads(blob)
    except BaseException as e:  # noqa: BLE001 - e.g. the transform's module is not importable here
        result_q.put((None, None, "error", (pickle.dumps(WorkerError(
            f"a worker process could not load the transform ({type(e).__name__}: {e}); functions of an importable "
            "module travel by name, so that module must import in a fresh process")), traceback.format_exc())))
        return
    if worker_init_fn is not None:  # torch's meaning: called once in each worker with its id
        try:
            worker_init_fn(worker_id)
        except BaseException as e:  # noqa: BLE001 - reported to the main process
            result_q.put((None, None, "error", (pickle.dumps(WorkerError(
                f"worker_init_fn raised {type(e).__name__}: {e} in worker {worker_id}")), traceback.format_exc())))
            return
    if sock is not None:
        sock.setblocking(False)
    maps: dict = {}  # block id -> mmap
    while True:
        try:
            task = task_q.get(timeout=_PARENT_CHECK_S)
        except queue.Empty:
            if os.getppid() != parent_pid:
                os._exit(0)
            continue
        if task is None:
            break
        gen, batch_id, rows, payload, forget, seed = task
        _receive_blocks(sock, maps)
        for block_id in forget:
            maps.pop(block_id, None)
        if gen != generation.value:  # its epoch was left or the pool is closing
            result_q.put((gen, batch_id, "skipped", None))
            continue
        try:
            columns = {}
            for name, (kind, value) in payload.items():
                if kind == "shm":
                    block_id, shape, dtype = value
                    if block_id not in maps:
                        raise WorkerError(f"tensor '{name}': shared block {block_id} of batch {batch_id} never "
                                          "reached this worker")
                    dtype = np.dtype(dtype)
                    columns[name] = np.frombuffer(maps[block_id], dtype=dtype,
                                                  count=int(np.prod(shape))).reshape(shape)
                else:
                    columns[name] = value
            with batch_scope(seed):  # the batch's random streams, whichever worker runs it
                batch = assemble(columns, rows)
            del columns
            result = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
            result_q.put((gen, batch_id, "ok", result))
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the main process
            result_q.put((gen, batch_id, "error", _error_record(e)))


def _describe(exitcode) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class WorkerPool:
    def __init__(self, num_workers: int, assemble, worker_init_fn=None, timeout=0):
        blob = shipping.dumps((assemble, worker_init_fn), {**assemble.user_code, "worker_init_fn": worker_init_fn},
                              num_workers)
        self.timeout = timeout  # seconds without a result before giving up (0: no limit)
        ctx = mp.get_context("spawn")
        self.result_q = ctx.Queue()
        self.task_qs = [ctx.Queue() for _ in range(num_workers)]
        self._generation = ctx.RawValue("q", 0)  # shared: workers skip tasks of older generations
        self.generation = 0
        # block descriptors travel over a Unix socket per worker (only where blocks can be shared)
        pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) if SHARED_MEMORY else (None, None)
                 for _ in range(num_workers)]
        self.socks = [ours for ours, _ in pairs]
        self.procs: list = []
        self._known = [set() for _ in range(num_workers)]  # block ids each worker has been sent
        self._inflight: dict = {}  # (generation, batch id) -> columns, leased until the result is back
        self._ready: dict = {}  # batch id -> (status, data) of the current generation
        self._next = 0
        self.closed = False
        stopped, started, failure = threading.Event(), threading.Event(), []
        keeper = threading.Thread(target=_keeper, daemon=True, name="deeplake_loader-workers",
                                  args=(ctx, self.procs, self.task_qs, self.result_q, [theirs for _, theirs in pairs],
                                        self._generation, blob, started, failure, stopped))
        self._finalizer = weakref.finalize(self, _stop, self.procs, self.task_qs + [self.result_q], self.socks,
                                           self._generation, stopped, keeper, self._inflight)
        keeper.start()
        started.wait()
        if failure:
            self.close()
            raise failure[0]

    # ------------------------------------------------------------------------------ epochs
    def begin_epoch(self) -> int:
        """A new generation: whatever earlier epochs left in flight is dropped, never delivered."""
        self._check_open()
        self.generation += 1
        self._generation.value = self.generation
        self._ready.clear()
        return self.generation

    def _check(self, gen):
        self._check_open()
        if gen != self.generation:
            raise DeepLakeLoaderError(
                "this epoch's iterator was replaced by a newer epoch of the same loader: with "
                "persistent_workers=True one set of workers serves the loader's epochs one at a time. Finish or "
                "leave an epoch before iterating the loader again (or use persistent_workers=False)")

    def _check_open(self):
        if self.closed:
            raise DeepLakeLoaderError("the loader was closed while this epoch was running")

    def submit(self, gen, batch_id, rows, columns, pool, seed):
        """Queue a batch's decoded columns (kept leased until its result is back); ``seed`` scopes
        the random streams of its transforms."""
        self._check(gen)
        i = self._next % len(self.task_qs)
        self._next += 1
        known = self._known[i]
        payload = {}
        for name, v in columns.items():
            block = pool.block_of(v) if isinstance(v, np.ndarray) else None
            if block is None:
                payload[name] = ("obj", v)
                continue
            if block.id not in known:
                try:
                    socket.send_fds(self.socks[i], [_BLOCK_MSG.pack(block.id, block.nbytes)], [block.fd])
                except OSError:  # the worker is gone: report it as such
                    self._raise_if_dead()
                    raise
                known.add(block.id)
            payload[name] = ("shm", (block.id, v.shape, v.dtype.str))
        forget = [b for b in known if not pool.holds(b)]
        known.difference_update(forget)
        self._inflight[(gen, batch_id)] = columns
        self.task_qs[i].put((gen, batch_id, np.asarray(rows), payload, forget, seed))

    def result(self, gen, batch_id):
        """The result of batch ``batch_id`` of epoch ``gen``; raises the worker's error, or
        WorkerError if a worker died or nothing came back for ``timeout`` seconds."""
        start = time.monotonic()
        while True:
            self._check(gen)
            if batch_id in self._ready:
                status, data = self._ready.pop(batch_id)
                if status == "ok":
                    return pickle.loads(data)
                self._raise_error(data)
            try:
                g, b, status, data = self.result_q.get(timeout=0.1)
            except queue.Empty:
                self._raise_if_dead()
                if self.timeout and time.monotonic() - start >= self.timeout:
                    self.close()
                    raise WorkerError(f"DataLoader timed out after {self.timeout:g} seconds waiting for a batch from "
                                      "its worker processes (timeout=)") from None
                continue
            self._inflight.pop((g, b), None)  # its shared blocks go back to the pool
            if b is None:  # the worker could not start
                self._raise_error(data)
            if g == self.generation and status != "skipped":
                self._ready[b] = (status, data)

    def _raise_error(self, data):
        err, tb = data
        self.close()
        exc = pickle.loads(err)
        if isinstance(exc, (TransformError, WorkerError)):
            raise exc
        raise TransformError(f"a worker raised {type(exc).__name__}: {exc}", traceback_text=tb) from exc

    def _raise_if_dead(self):
        for i, p in enumerate(self.procs):
            if p.exitcode is not None:
                self.close()
                raise WorkerError(f"dataloader worker {i} (pid {p.pid}) exited unexpectedly "
                                  f"({_describe(p.exitcode)})") from None

    def close(self):
        self.closed = True
        self._finalizer()


def _keeper(ctx, procs, task_qs, result_q, their_socks, generation, blob, started, failure, stopped):
    """Start the workers, then live until the pool stops: Linux sends a child's PR_SET_PDEATHSIG
    when the thread that started it ends, so that thread must be this one, not the caller's (which
    may be a short-lived thread of a framework). Holds no reference to the pool."""
    try:
        for i, (q, theirs) in enumerate(zip(task_qs, their_socks)):
            p = ctx.Process(target=_worker_main, args=(os.getpid(), q, result_q, theirs, generation, blob, i),
                            daemon=True, name=f"deeplake_loader-worker-{i}")
            p.start()
            procs.append(p)
    except BaseException as e:  # noqa: BLE001 - raised in the caller
        failure.append(e)
    finally:
        for theirs in their_socks:
            if theirs is not None:
                theirs.close()  # each worker has its own copy now
        started.set()
    stopped.wait()


def _stop(procs, queues, socks, generation, stopped, keeper, inflight):
    """Make queued tasks stale, ask every worker to exit, terminate the ones that do not; never
    blocks for long. Then the shared blocks of unfinished batches go back to the pool."""
    generation.value = -1
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
    stopped.set()  # the keeper thread ends
    if keeper.is_alive() and keeper is not threading.current_thread():
        keeper.join(timeout=2)
    for q in queues:
        q.cancel_join_thread()  # a dead reader must not block us on unflushed items
        q.close()
    for s in socks:
        if s is not None:
            s.close()
    inflight.clear()
