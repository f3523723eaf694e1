"""What runs inside a worker process: our own entry point, never the user's script.

A worker is started by workers.py in one of two ways, and then runs ``serve``:

* **fork** (the default on Linux, as torch's DataLoader and so Deep Lake 3): the child is a copy of
  the training process made from a thread of the pool; it already holds the batch assembler (the
  user's transform and collate_fn, by value) and every module the parent imported, so it starts in
  milliseconds and never imports or runs the user's script. The decode kernels are fork-safe
  (_kernels/decode.pyx), and the child freezes the objects it inherited (``gc.freeze``) so that no
  leftover of the parent is finalized here;
* **exec** (``multiprocessing_context="spawn"`` or ``"forkserver"``, or where fork does not exist):
  a fresh interpreter runs ``python -m deeplake_loader.pipeline.worker``, receives the parent's
  ``sys.path`` and the assembler pickled with cloudpickle (pipeline/shipping.py) over its socket,
  and imports only what the transform itself needs. Unlike multiprocessing's spawn, it never
  re-imports ``__main__``: a script without an ``if __name__ == "__main__":`` guard, ``python -c``,
  a script on standard input or code run by ``exec`` all work.

Then, as torch's worker loop does: SIGINT ignored (the main process decides when to stop), one
intra-op thread for torch, ``worker_init_fn(worker_id)``, and tasks in order until a ``None`` task or
the parent is gone (PR_SET_PDEATHSIG, plus a parent check every second). A task names its decoded
columns by shared block (mapped once per block, file descriptors received on the control socket)
and may name a result area; the finished batch goes back through wire.py. Any failure goes back as
an error record with its traceback; a task of an epoch that was left is skipped.
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import select
import signal
import socket
import struct
import sys
import traceback

import numpy as np

from ..errors import TransformError, WorkerError
from . import wire
from .memory import map_block

PARENT_CHECK_S = 1.0
READY = (-2, 0)  # tag of the message a worker sends once it is ready for tasks
BLOCK_MSG = struct.Struct("qq")  # block id, bytes
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when the parent thread that started it ends (Linux), and exit now if
    the parent is already gone."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the wait loop's parent check still holds
            pass
    if os.getppid() != parent_pid:
        os._exit(0)


def _one_torch_thread() -> None:
    """torch's worker convention: one intra-op thread per worker, so workers do not fight each
    other's thread pools."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def error_record(e) -> tuple:
    try:
        err = pickle.dumps(e)
        pickle.loads(err)
    except Exception:  # noqa: BLE001 - an exception that does not survive pickling
        err = pickle.dumps(TransformError(f"{type(e).__name__}: {e}", traceback_text=traceback.format_exc()))
    return err, traceback.format_exc()


def _receive_blocks(ctl, maps) -> None:
    """Map every block descriptor the main process has sent so far (it sends them before the task
    that needs them). An empty message means the main process is gone."""
    while ctl is not None:
        try:
            msg, fds, _, _ = socket.recv_fds(ctl, BLOCK_MSG.size, 1)
        except BlockingIOError:
            return
        if not msg:
            os._exit(0)
        block_id, nbytes = BLOCK_MSG.unpack(msg)
        maps[block_id] = map_block(fds[0], nbytes)


def _columns(payload, maps, batch_id):
    columns = {}
    for name, (kind, value) in payload.items():
        if kind == "shm":
            block_id, shape, dtype = value
            if block_id not in maps:
                raise WorkerError(f"tensor '{name}': shared block {block_id} of batch {batch_id} never reached this "
                                  "worker")
            dtype = np.dtype(dtype)
            columns[name] = np.frombuffer(maps[block_id], dtype=dtype, count=int(np.prod(shape))).reshape(shape)
        else:
            columns[name] = value
    return columns


def serve(conn, ctl, generation, parent_pid: int, worker_id: int, assemble, worker_init_fn) -> None:
    """The worker loop (see the module doc). ``generation``: the shared int64 of the current epoch."""
    from ..random import batch_scope

    _one_torch_thread()
    if worker_init_fn is not None:  # torch's meaning: called once in each worker with its id
        try:
            worker_init_fn(worker_id)
        except BaseException as e:  # noqa: BLE001 - reported to the main process
            wire.send(conn, ("error", (pickle.dumps(WorkerError(
                f"worker_init_fn raised {type(e).__name__}: {e} in worker {worker_id}")), traceback.format_exc())),
                tag=(-1, -1))
            return
    if ctl is not None:
        ctl.setblocking(False)
    maps: dict = {}  # block id -> mmap
    wire.send(conn, ("ready", os.getpid()), tag=READY)  # started: the main process stops timing our start
    while True:
        ready, _, _ = select.select([conn], [], [], PARENT_CHECK_S)
        if not ready:
            if os.getppid() != parent_pid:
                os._exit(0)
            continue
        try:
            _, task, _ = wire.recv(conn)
        except EOFError:
            return
        if task is None:
            return
        gen, batch_id, rows, payload, forget, seed, area_ref = task
        _receive_blocks(ctl, maps)
        for block_id in forget:
            maps.pop(block_id, None)
        if generation.value is not None and gen != generation.value:  # its epoch was left or the pool is closing
            wire.send(conn, ("skipped", None), tag=(gen, batch_id))
            continue
        try:
            columns = _columns(payload, maps, batch_id)
            with batch_scope(seed):  # the batch's random streams, whichever worker runs it
                batch = assemble(columns, rows)
            del columns
            area = None
            if area_ref is not None and area_ref[0] in maps:
                area = memoryview(maps[area_ref[0]])[:area_ref[1]]
            wire.send(conn, ("ok", batch), tag=(gen, batch_id), area=area)
            del batch, area
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the main process
            wire.send(conn, ("error", error_record(e)), tag=(gen, batch_id))


def forked(conn, ctl, generation, parent_pid, worker_id, assemble, worker_init_fn, keep=()) -> None:
    """Entry of a forked worker: ``keep`` are the parent's descriptors of the other workers, closed
    here."""
    gc.freeze()  # what the parent left for its garbage collector is not ours to finalize
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for s in keep:
        try:
            s.close()
        except OSError:
            pass
    serve(conn, ctl, generation, parent_pid, worker_id, assemble, worker_init_fn)


class _Generation:
    """The shared current-epoch number, over a small shared mapping (exec'd workers; None where the
    platform cannot share one: stale tasks then run and their results are dropped)."""

    def __init__(self, fd):
        import mmap

        self._value = None
        if fd >= 0:
            self._map = mmap.mmap(fd, 8)
            os.close(fd)
            self._value = ctypes.c_int64.from_buffer(self._map)

    @property
    def value(self):
        return None if self._value is None else self._value.value


def main(argv=None) -> None:
    """``python -m deeplake_loader.pipeline.worker PARENT_PID WORKER_ID CONN_FD CTL_FD GEN_FD``."""
    parent_pid, worker_id, conn_fd, ctl_fd, gen_fd = (int(a) for a in (argv or sys.argv[1:]))
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = socket.socket(fileno=conn_fd)
    ctl = socket.socket(fileno=ctl_fd) if ctl_fd >= 0 else None
    generation = _Generation(gen_fd)
    try:
        _, (path, blob), _ = wire.recv(conn)
        sys.path[:] = path  # the parent's: the transform's own modules import as they did there
        from . import shipping

        assemble, worker_init_fn = shipping.loads(blob)
    except BaseException as e:  # noqa: BLE001 - e.g. the transform's module is not importable here
        wire.send(conn, ("error", (pickle.dumps(WorkerError(
            f"a worker process could not load the transform ({type(e).__name__}: {e}); functions of an importable "
            "module travel by name, so that module must import in a fresh process")), traceback.format_exc())),
            tag=(-1, -1))
        return
    serve(conn, ctl, generation, parent_pid, worker_id, assemble, worker_init_fn)


if __name__ == "__main__":
    main()
