"""Worker processes for per-sample transforms and collation (num_workers > 0), main-process side.

What a worker runs, and the two ways it is started (fork by default on Linux; a fresh interpreter
running our own entry module otherwise; never the user's script), is pipeline/worker.py. The
protocol, written down once:

* Start. One pool per loader, started at its first epoch that runs user code and kept for every
  later epoch until the loader is closed: a start costs a fork, or, for exec'd workers, the
  imports the transform needs, and neither is paid again per epoch. Linux sends a child's
  PR_SET_PDEATHSIG when the *thread* that started it ends, so workers are started by the main
  thread when it is the caller, else by a thread of the pool that lives until ``close()`` (the
  caller may be a short-lived thread of a framework, tf.data's). Only the main thread forks: a
  child forked from another thread tears down the main thread's ``threading.local``s as it starts
  (TensorFlow's eager context, PyAV's converters), and some of those wait forever there on threads
  the child does not have; an epoch started from another thread gets fresh interpreters. A worker says when it is ready; one that has
  not within $DEEPLAKE_LOADER_WORKER_START_TIMEOUT (120 s) is an error, never a wait without end.
* Channels. Each worker has two Unix socket pairs: a stream for tasks and results (wire.py) and a
  datagram socket on which the file descriptors of shared blocks travel (SCM_RIGHTS), each sent
  once, before the first task that names it. A task names its decoded columns by block, says which
  blocks the pool dropped since (the worker unmaps them), and names a *result area*: a block of
  the pool, as large as the previous result needed, into which the worker writes the finished
  batch's arrays (one copy); the batch handed to the caller is views of it, leased until freed.
  A receiver thread reads every worker's results as they come, so a worker never waits for the
  main process to read, and results wait in a dict until asked for, in order.
* Epochs. Every task and result carries the generation of the epoch that sent it.
  ``begin_epoch()`` starts a new generation (also written to a shared int64 the workers read):
  results of older ones are dropped when they arrive, their blocks and areas staying leased until
  then, so no worker ever writes into or reads from a block that is being reused; workers skip
  older tasks still queued. An epoch that was replaced raises when resumed instead of waiting.
* Errors. A worker that raises sends the exception back with its traceback; a worker that dies is
  noticed within a fraction of a second and reported, never waited on forever; ``timeout`` bounds
  the wait for a result.
* Lifetime. ``close()`` makes queued tasks stale, sends every worker a ``None`` task, joins for
  2 s, then kills; the sockets close with it. Workers die with the main process whatever kills it
  (PR_SET_PDEATHSIG, and a parent check every second). Only the process that made a pool ever
  stops its workers (a forked child may inherit the pool object).
"""

from __future__ import annotations

import mmap
import multiprocessing as mp
import os
import pickle
import selectors
import socket
import subprocess
import sys
import threading
import time
import weakref

import numpy as np

from ..errors import DeepLakeLoaderError, TransformError, WorkerError
from . import shipping, wire
from .memory import SHARED_MEMORY
from .worker import BLOCK_MSG, READY

START_METHODS = ("fork", "exec")
START_TIMEOUT_ENV = "DEEPLAKE_LOADER_WORKER_START_TIMEOUT"


def start_timeout() -> float:
    """Seconds a worker may take from its start to its first word (imports, worker_init_fn)
    before the loader reports it instead of waiting on it: $DEEPLAKE_LOADER_WORKER_START_TIMEOUT,
    default 120."""
    value = os.environ.get(START_TIMEOUT_ENV, "120")
    try:
        return max(0.1, float(value))
    except ValueError:
        raise ValueError(f"{START_TIMEOUT_ENV}={value!r}: expected a number of seconds") from None


def default_start_method() -> str:
    """fork where the platform has it (Linux: what torch's DataLoader does), else exec."""
    return "fork" if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods() else "exec"


def start_method_of(ctx):
    """How our workers start for a torch-style ``multiprocessing_context`` (a name or a context):
    'fork' forks, 'spawn' and 'forkserver' run a fresh interpreter on our own entry module (never
    the user's script: pipeline/worker.py), None is the platform's default."""
    if ctx is None:
        return None
    method = ctx if isinstance(ctx, str) else getattr(ctx, "get_start_method", lambda: None)()
    if method not in ("fork", "spawn", "forkserver"):
        raise ValueError(f"multiprocessing_context={ctx!r}: expected None, 'fork', 'spawn', 'forkserver' or a "
                         "multiprocessing context")
    return "fork" if method == "fork" else "exec"


def context_of(start_method):
    """The multiprocessing context that names a start method (exec'd workers: spawn's)."""
    return mp.get_context("fork" if (start_method or default_start_method()) == "fork" else "spawn")


def _describe(code) -> str:
    if code is not None and code < 0:
        import signal

        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _Worker:
    """One worker process and our ends of its channels."""

    def __init__(self, worker_id: int):
        self.id = worker_id
        self.conn, self.their_conn = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ctl, self.their_ctl = (socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) if SHARED_MEMORY
                                    else (None, None))
        self.proc = None  # multiprocessing.Process (fork) or subprocess.Popen (exec)
        self.known: set = set()  # block ids sent to it
        self.send_lock = threading.Lock()
        self.started = time.monotonic()
        self.ready = threading.Event()  # it said it is ready for tasks

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def exitcode(self):
        if self.proc is None:
            return None
        return self.proc.exitcode if isinstance(self.proc, mp.process.BaseProcess) else self.proc.poll()

    def close_theirs(self):
        for s in (self.their_conn, self.their_ctl):
            if s is not None:
                s.close()


class WorkerPool:
    def __init__(self, num_workers: int, assemble, worker_init_fn=None, timeout=0, start_method=None):
        self.start_method = start_method or default_start_method()
        if self.start_method not in START_METHODS:
            raise ValueError(f"start_method must be one of {START_METHODS}, got {self.start_method!r}")
        if self.start_method == "fork" and (mp.current_process().daemon  # may not have children of its own
                                            or threading.current_thread() is not threading.main_thread()):
            # a child forked from another thread tears down the main thread's threading.locals as it
            # starts, running their finalizers there (TensorFlow's eager context, a PyAV converter...),
            # some of which wait forever on threads the child does not have: fork from the main thread only
            self.start_method = "exec"
        blob = None
        if self.start_method == "exec":  # by value, so that it reaches a fresh interpreter
            blob = shipping.dumps((assemble, worker_init_fn),
                                  {**assemble.user_code, "worker_init_fn": worker_init_fn}, num_workers)
        self.timeout = timeout  # seconds without a result before giving up (0: no limit)
        self.start_timeout = start_timeout()
        self.workers = [_Worker(i) for i in range(num_workers)]
        self._gen_fd = os.memfd_create("deeplake_loader_generation", os.MFD_CLOEXEC) if SHARED_MEMORY else -1
        if self._gen_fd >= 0:
            os.ftruncate(self._gen_fd, 8)
            self._gen_map = mmap.mmap(self._gen_fd, 8)
        else:
            self._gen_map = mmap.mmap(-1, 8)  # MAP_SHARED anonymous: forked workers share it
        self._gen_value = np.frombuffer(self._gen_map, dtype=np.int64, count=1)
        self.generation = 0
        self._next = 0
        self._owner = os.getpid()
        self._inflight: dict = {}  # (gen, batch id) -> (worker, columns, area): leased until the result is back
        self._ready: dict = {}  # (gen, batch id) -> (status, data) received
        self._cond = threading.Condition()
        self._result_bytes = 0  # what the last results needed: the size of the next result areas
        self.closed = False
        self.failure = None  # what the receiver thread saw go wrong (a worker gone)
        stopped, started, failure = threading.Event(), threading.Event(), []
        # who starts the workers: the main thread itself when it is the caller, else a thread of the
        # pool that lives until close() (PR_SET_PDEATHSIG follows the thread that started a child)
        starter = threading.current_thread() is threading.main_thread()
        keeper = threading.Thread(target=_keeper, daemon=True, name="deeplake_loader-workers",
                                  args=([] if starter else self.workers, self.start_method, assemble, worker_init_fn,
                                        blob, self._gen_map, self._gen_fd, started, failure, stopped))
        receiver = threading.Thread(target=_receive, daemon=True, name="deeplake_loader-results",
                                    args=(weakref.ref(self), self.workers, stopped))
        self._finalizer = weakref.finalize(self, _stop, self.workers, self._gen_value, stopped, keeper, receiver,
                                           self._inflight, self._owner)
        if starter:
            try:
                for w in self.workers:
                    _start(w, self.workers, self.start_method, assemble, worker_init_fn, blob, self._gen_map,
                           self._gen_fd)
            except BaseException as e:  # noqa: BLE001 - raised below, after the pool is closed
                failure.append(e)
            finally:
                for w in self.workers:
                    w.close_theirs()
        keeper.start()
        started.wait()
        if failure:
            self.close()
            raise failure[0]
        receiver.start()

    @property
    def procs(self) -> list:
        return [w.proc for w in self.workers if w.proc is not None]

    @property
    def pids(self) -> list:
        return [w.pid for w in self.workers]

    # ------------------------------------------------------------------------------ epochs
    def begin_epoch(self) -> int:
        """A new generation: whatever earlier epochs left in flight is dropped, never delivered."""
        self._check_open()
        with self._cond:
            self.generation += 1
            self._gen_value[0] = self.generation
            for key in [k for k in self._ready if k[0] != self.generation]:
                del self._ready[key]
        return self.generation

    def _check(self, gen):
        self._check_open()
        if gen != self.generation:
            raise DeepLakeLoaderError(
                "this epoch's iterator was replaced by a newer epoch of the same loader: one set of workers "
                "serves the loader's epochs one at a time. Finish or leave an epoch before iterating the loader "
                "again")

    def _check_open(self):
        if self.closed:
            raise DeepLakeLoaderError("the loader was closed while this epoch was running")

    def submit(self, gen, batch_id, rows, columns, pool, seed):
        """Queue a batch's decoded columns (kept leased until its result is back); ``seed`` scopes
        the random streams of its transforms."""
        self._check(gen)
        w = self.workers[self._next % len(self.workers)]
        self._next += 1
        payload = {}
        area, area_ref = None, None
        if pool.shared and self._result_bytes:
            area = pool.array((self._result_bytes,), np.uint8)
        with w.send_lock:
            for name, v in columns.items():
                block = pool.block_of(v) if isinstance(v, np.ndarray) else None
                if block is None:
                    payload[name] = ("obj", v)
                    continue
                self._send_block(w, block)
                payload[name] = ("shm", (block.id, v.shape, v.dtype.str))
            if area is not None:
                block = pool.block_of(area)
                self._send_block(w, block)
                area_ref = (block.id, area.nbytes)
            forget = [b for b in w.known if not pool.holds(b)]
            w.known.difference_update(forget)
            self._inflight[(gen, batch_id)] = (w, columns, area)
            try:
                wire.send(w.conn, (gen, batch_id, np.asarray(rows), payload, forget, seed, area_ref), tag=(gen, batch_id),
                          stalled=lambda: self._check_started(w))
            except OSError:
                self._inflight.pop((gen, batch_id), None)
                self._raise_if_dead()
                raise

    def _send_block(self, w, block):
        if block.id in w.known:
            return
        try:
            socket.send_fds(w.ctl, [BLOCK_MSG.pack(block.id, block.nbytes)], [block.fd])
        except OSError:  # the worker is gone: report it as such
            self._raise_if_dead()
            raise
        w.known.add(block.id)

    def _check_started(self, w):
        """Raise if a worker died, or has not said it is ready within the start timeout (a child
        that hangs as it starts must be an error, not a wait without end)."""
        self._raise_if_dead()
        if not w.ready.is_set() and time.monotonic() - w.started > self.start_timeout:
            self.close()
            raise WorkerError(f"dataloader worker {w.id} (pid {w.pid}) did not start within {self.start_timeout:g} s "
                              f"(its imports and worker_init_fn; ${START_TIMEOUT_ENV} sets the limit)")

    def area_for(self, tag):
        entry = self._inflight.get(tag)
        return wire.as_writable(entry[2]) if entry is not None and entry[2] is not None else None

    def _arrived(self, tag, message, need):
        """A result arrived (receiver thread): kept if it belongs to the current epoch."""
        with self._cond:
            self._inflight.pop(tag, None)  # its blocks (and an unused area) go back to the pool
            self._result_bytes = max(self._result_bytes, need)
            status, data = message
            if tag[0] == -1 or (tag[0] == self.generation and status != "skipped"):
                self._ready[tag] = (status, data)
            self._cond.notify_all()

    def result(self, gen, batch_id):
        """The result of batch ``batch_id`` of epoch ``gen``; raises the worker's error, or
        WorkerError if a worker died or nothing came back for ``timeout`` seconds."""
        start = time.monotonic()
        key = (gen, batch_id)
        while True:
            with self._cond:
                self._check(gen)
                got = self._ready.pop(key, None) or self._ready.pop((-1, -1), None)
                if got is None:
                    self._cond.wait(0.1)
                    got = self._ready.pop(key, None) or self._ready.pop((-1, -1), None)
            if got is not None:
                status, data = got
                if status == "ok":
                    return data
                self._raise_error(data)
            for w in self.workers:
                self._check_started(w)
            if self.timeout and time.monotonic() - start >= self.timeout:
                self.close()
                raise WorkerError(f"DataLoader timed out after {self.timeout:g} seconds waiting for a batch from "
                                  "its worker processes (timeout=)") from None

    def _raise_error(self, data):
        err, tb = data
        self.close()
        exc = pickle.loads(err)
        if isinstance(exc, (TransformError, WorkerError)):
            raise exc
        raise TransformError(f"a worker raised {type(exc).__name__}: {exc}", traceback_text=tb) from exc

    def _raise_if_dead(self):
        for w in self.workers:
            code = w.exitcode()
            if code is not None:
                self.close()
                raise WorkerError(f"dataloader worker {w.id} (pid {w.pid}) exited unexpectedly "
                                  f"({_describe(code)})") from None
        if self.failure is not None:
            self.close()
            raise self.failure

    def close(self):
        self.closed = True
        self._finalizer()


def _receive(pool_ref, workers, stopped):
    """Read every worker's results as they arrive and hand them to the pool (holds no strong
    reference to it between messages)."""
    sel = selectors.DefaultSelector()
    for w in workers:
        sel.register(w.conn, selectors.EVENT_READ, w)
    try:
        while not stopped.is_set():
            for key, _ in sel.select(timeout=0.2):
                w = key.data
                pool = pool_ref()
                if pool is None:
                    return
                try:
                    tag, message, need = wire.recv(w.conn, pool.area_for)
                except (EOFError, OSError, ValueError) as e:
                    sel.unregister(w.conn)
                    if not stopped.is_set() and w.exitcode() is None and isinstance(e, ValueError):
                        pool.failure = WorkerError(f"dataloader worker {w.id} sent a malformed result: {e}")
                    continue
                if tag == READY:
                    w.ready.set()
                else:
                    pool._arrived(tag, message, need)
                del pool, message
    finally:
        sel.close()


def _keeper(workers, method, assemble, worker_init_fn, blob, gen_map, gen_fd, started, failure, stopped):
    """Start ``workers`` (those the caller did not start itself), then live until the pool stops
    (see the module doc). Holds no reference to the pool."""
    try:
        for w in workers:
            _start(w, workers, method, assemble, worker_init_fn, blob, gen_map, gen_fd)
    except BaseException as e:  # noqa: BLE001 - raised in the caller
        failure.append(e)
    finally:
        for w in workers:
            w.close_theirs()  # each worker has its own copy now
        started.set()
    stopped.wait()


def _start(w, workers, method, assemble, worker_init_fn, blob, gen_map, gen_fd):
    from . import worker as child

    parent = os.getpid()
    if method == "fork":
        class _Shared:  # the generation, read through the mapping the child inherits
            value = property(lambda self: int(np.frombuffer(gen_map, dtype=np.int64, count=1)[0]))

        others = [s for o in workers if o is not w for s in (o.conn, o.ctl, o.their_conn, o.their_ctl)
                  if s is not None and s.fileno() >= 0] + [w.conn] + ([w.ctl] if w.ctl is not None else [])
        p = mp.get_context("fork").Process(
            target=child.forked, name=f"deeplake_loader-worker-{w.id}", daemon=True,
            args=(w.their_conn, w.their_ctl, _Shared(), parent, w.id, assemble, worker_init_fn, others))
        p.start()
        w.proc = p
        return
    fds = [w.their_conn.fileno(), w.their_ctl.fileno() if w.their_ctl is not None else -1, gen_fd]
    cmd = [sys.executable, "-m", "deeplake_loader.pipeline.worker", str(parent), str(w.id)] + [str(f) for f in fds]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # one intra-op thread, set before torch is imported there
    w.proc = subprocess.Popen(cmd, pass_fds=[f for f in fds if f >= 0], env=env, close_fds=True)
    deadline = w.started + start_timeout()

    def stalled():
        if w.proc.poll() is not None or time.monotonic() > deadline:
            raise WorkerError(f"dataloader worker {w.id} (pid {w.pid}) did not take its transform within "
                              f"{start_timeout():g} s ({_describe(w.proc.poll()) if w.proc.poll() is not None else 'alive'})")

    wire.send(w.conn, (list(sys.path), blob), stalled=stalled)


def _stop(workers, gen_value, stopped, keeper, receiver, inflight, owner):
    """Make queued tasks stale, ask every worker to exit, kill the ones that do not; never blocks
    for long. Then the shared blocks of unfinished batches go back to the pool."""
    if os.getpid() != owner:  # a forked child holding a copy of the pool: not its workers
        return
    gen_value[0] = -1
    for w in workers:
        if w.proc is not None and w.exitcode() is None:
            try:
                with w.send_lock:
                    w.conn.settimeout(1)
                    wire.send(w.conn, None)
            except (OSError, ValueError):
                pass
    deadline = time.monotonic() + 2
    for w in workers:
        if w.proc is None:
            continue
        while w.exitcode() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if w.exitcode() is None:
            w.proc.kill()
        if isinstance(w.proc, mp.process.BaseProcess):
            w.proc.join(timeout=2)
        else:
            try:
                w.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
    stopped.set()  # the keeper and receiver threads end
    for t in (keeper, receiver):
        if t.is_alive() and t is not threading.current_thread():
            t.join(timeout=2)
    for w in workers:
        for s in (w.conn, w.ctl):
            if s is not None:
                s.close()
        w.close_theirs()
    inflight.clear()
