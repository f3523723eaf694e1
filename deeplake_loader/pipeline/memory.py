"""Reused batch memory. ``BufferPool.array(shape, dtype)`` leases an array over a block that goes
back to the pool once the last array (or torch tensor) viewing it is freed, so the hot path writes
into pages that are already mapped instead of page-faulting fresh memory for every batch.

Bounded: a block is reused only for an array of exactly its size, and the pool keeps at most
``max_free_blocks`` free blocks holding at most ``max_free_bytes``, dropping the least recently
returned first (when the pool is next used: a block's last view may die on any thread, or in the
garbage collector, so returning it only queues it). By default both follow what the pipeline can have in flight (``slots`` batches):
``slots`` blocks and ``slots`` x the largest block leased so far; the environment variable
``DEEPLAKE_LOADER_POOL_MB`` fixes the bytes instead. Leased blocks are not counted and never freed
under a live array: a block's memory goes when the pool has dropped it *and* its last view is gone.
``stats()`` gives the accounting.

Blocks are private anonymous memory, or — for worker processes — Linux memfd shared memory: it has
no name in /dev/shm, so nothing of it can outlive the processes that map it, whatever kills them,
and it does not count against a small /dev/shm (64 MB in Docker by default). Workers receive a
block's file descriptor (workers.py). Without memfd (not Linux) blocks are private and workers
get batches pickled. ``sweep_dead_blocks()`` removes the /dev/shm files
``deeplake_loader_<pid>_*`` that loaders before memfd created and left behind when killed.

Every leased array starts at the beginning of its block, a page boundary, so on an ``ALIGN``
(64-byte) boundary: what TensorFlow requires of memory it is handed without a copy (DLPack,
iterators/tensorflow.py).
"""

from __future__ import annotations

import collections
import ctypes
import functools
import glob
import itertools
import mmap
import os
import threading
import weakref

import numpy as np

SHM_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
SHARED_MEMORY = hasattr(os, "memfd_create")
POOL_MB_ENV = "DEEPLAKE_LOADER_POOL_MB"
ALIGN = 64  # bytes; leased arrays start on a page (mmap blocks), so on ALIGN too


class _Block:
    __slots__ = ("id", "nbytes", "buf", "fd", "__weakref__")

    def __init__(self, block_id: int, nbytes: int, shared: bool):
        self.id, self.nbytes, self.fd = block_id, nbytes, -1
        size = max(nbytes, 1)
        if shared:
            self.fd = os.memfd_create(f"deeplake_loader_{os.getpid()}_{block_id}", os.MFD_CLOEXEC)
            try:
                os.ftruncate(self.fd, size)
                self.buf = mmap.mmap(self.fd, size)
            except BaseException:
                os.close(self.fd)
                raise
        else:
            self.buf = mmap.mmap(-1, size)  # anonymous: unmapped (returned to the OS) when freed

    def free(self):
        """Drop the pool's hold: the descriptor now, the mapping when its last view is gone."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.buf = None


def _pool_bytes_from_env():
    value = os.environ.get(POOL_MB_ENV)
    if not value:
        return None
    try:
        mb = float(value)
    except ValueError:
        raise ValueError(f"{POOL_MB_ENV}={value!r}: expected a number of MB") from None
    if mb < 0:
        raise ValueError(f"{POOL_MB_ENV}={value!r}: expected a number of MB >= 0")
    return int(mb * 2**20)


class BufferPool:
    def __init__(self, shared: bool = False, slots: int = 8, max_free_bytes: int | None = None):
        self.shared = bool(shared) and SHARED_MEMORY
        self.slots = max(1, int(slots))
        self._fixed_bytes = max_free_bytes if max_free_bytes is not None else _pool_bytes_from_env()
        self._free: dict = {}  # nbytes -> [blocks], most recently returned last
        self._lru: collections.OrderedDict = collections.OrderedDict()  # id -> free block, oldest first
        self._live: dict = {}  # id -> every block the pool holds (leased or free)
        self._ids = itertools.count()
        self._largest = 0
        self.free_bytes = 0
        self.leased_bytes = 0
        self._returned: collections.deque = collections.deque()  # blocks whose last view died
        self._lock = threading.Lock()
        self._closed = False
        self._finalizer = weakref.finalize(self, BufferPool._free_all, self._live)
        if self.shared:
            sweep_dead_blocks()

    @property
    def max_free_bytes(self) -> int:
        return self._fixed_bytes if self._fixed_bytes is not None else self.slots * self._largest

    @property
    def max_free_blocks(self) -> int:
        return self.slots

    def stats(self) -> dict:
        with self._lock:
            dropped = self._take_back_locked()
        for b in dropped:
            b.free()
        with self._lock:
            return dict(free_bytes=self.free_bytes, leased_bytes=self.leased_bytes, free_blocks=len(self._lru),
                        blocks=len(self._live), max_free_bytes=self.max_free_bytes,
                        max_free_blocks=self.max_free_blocks)

    def array(self, shape, dtype) -> np.ndarray:
        """A leased array; block_of(arr) tells which block backs it."""
        dtype = np.dtype(dtype)
        count = int(np.prod(shape))
        nbytes = count * dtype.itemsize
        with self._lock:
            dropped = self._take_back_locked()
            bucket = self._free.get(nbytes)
            block = bucket.pop() if bucket else None
            if block is not None:
                if not bucket:
                    del self._free[nbytes]
                del self._lru[block.id]
                self.free_bytes -= nbytes
            block_id = next(self._ids) if block is None else block.id
            self._largest = max(self._largest, nbytes)
            self.leased_bytes += nbytes
        for b in dropped:
            b.free()
        try:
            if block is None:
                block = _Block(block_id, nbytes, self.shared)
                with self._lock:
                    self._live[block_id] = block
            lease = (ctypes.c_uint8 * max(nbytes, 1)).from_buffer(block.buf)
        except BaseException:
            with self._lock:
                self.leased_bytes -= nbytes
            raise
        lease.block = block
        weakref.finalize(lease, BufferPool._give_back, weakref.ref(self), block)
        return np.frombuffer(lease, dtype=dtype, count=count).reshape(shape)

    @staticmethod
    def _give_back(pool_ref, block):
        # Runs wherever the last view dies (any thread, or the garbage collector in the middle of
        # another pool call), so it only queues the block; the pool takes it back under its lock.
        pool = pool_ref()
        if pool is None or pool._closed:
            block.free()
        else:
            pool._returned.append(block)

    def _take_back_locked(self) -> list:
        while self._returned:
            block = self._returned.popleft()
            self.leased_bytes -= block.nbytes
            if self._closed:
                continue
            self._free.setdefault(block.nbytes, []).append(block)
            self._lru[block.id] = block
            self.free_bytes += block.nbytes
        return self._evict_locked()

    def _evict_locked(self) -> list:
        dropped = []
        while self._lru and (self.free_bytes > self.max_free_bytes or len(self._lru) > self.max_free_blocks):
            _, block = self._lru.popitem(last=False)
            bucket = self._free[block.nbytes]
            bucket.remove(block)
            if not bucket:
                del self._free[block.nbytes]
            self.free_bytes -= block.nbytes
            del self._live[block.id]
            dropped.append(block)
        return dropped

    def block_of(self, arr):
        """The shared block under a leased array (``.id``, ``.fd``, ``.nbytes``), or None."""
        lease = arr.base
        while lease is not None and not isinstance(lease, ctypes.Array):
            lease = getattr(lease, "base", None)
        block = getattr(lease, "block", None)
        return block if block is not None and block.fd >= 0 else None

    def holds(self, block_id) -> bool:
        """Whether the pool still holds the block (leased or free), i.e. it has not been dropped."""
        return block_id in self._live

    @staticmethod
    def _free_all(blocks):
        for b in list(blocks.values()):
            b.free()
        blocks.clear()

    def close(self):
        with self._lock:
            self._closed = True
            self._take_back_locked()
            self._free.clear()
            self._lru.clear()
            self.free_bytes = 0
        self._finalizer()


def map_block(fd: int, nbytes: int) -> mmap.mmap:
    """A worker's mapping of a block whose descriptor it received; the descriptor is closed (the
    mapping keeps the memory)."""
    try:
        return mmap.mmap(fd, max(nbytes, 1))
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@functools.cache
def sweep_dead_blocks() -> int:
    """Remove /dev/shm/deeplake_loader_<pid>_* files whose process is gone (once per process);
    returns how many."""
    removed = 0
    if SHM_DIR is None:
        return removed
    for path in glob.glob(os.path.join(SHM_DIR, "deeplake_loader_*_*")):
        pid = os.path.basename(path).split("_")[2]
        if pid.isdigit() and not _pid_alive(int(pid)):
            try:
                os.unlink(path)
                removed += 1
            except OSError:  # removed meanwhile, or not ours to remove
                pass
    return removed
