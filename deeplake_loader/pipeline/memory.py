"""Reused batch memory. ``BufferPool.array(shape, dtype)`` leases an array over a block that goes
back to the pool once the last array (or torch tensor) viewing it is freed, so the hot path writes
into pages that are already mapped instead of page-faulting fresh memory for every batch.

Blocks are private (bytearray) or shared with worker processes (files in /dev/shm, mapped by name;
removed on close(), garbage collection and interpreter exit). Every leased array starts on a
64-byte boundary (``ALIGN``), which TensorFlow requires of memory it is handed without a copy
(DLPack, iterators/tensorflow.py).
"""

from __future__ import annotations

import ctypes
import mmap
import os
import threading
import uuid
import weakref

import numpy as np

_SHM_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
ALIGN = 64


class _Block:
    def __init__(self, nbytes: int, shared: bool):
        self.nbytes = nbytes
        self.path = None
        if shared and _SHM_DIR:
            self.path = os.path.join(_SHM_DIR, f"deeplake_loader_{os.getpid()}_{uuid.uuid4().hex[:12]}")
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
            try:
                os.ftruncate(fd, max(nbytes, 1))
                self.buf = mmap.mmap(fd, max(nbytes, 1))
            finally:
                os.close(fd)
        else:
            self.buf = bytearray(max(nbytes, 1) + ALIGN)  # room to start on an ALIGN boundary
        base = ctypes.addressof(ctypes.c_uint8.from_buffer(self.buf))
        self.offset = (-base) % ALIGN  # mmap blocks are page-aligned: 0

    def release(self):
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = None


class BufferPool:
    def __init__(self, shared: bool = False):
        self.shared = shared
        self._free: dict = {}
        self._all: list = []
        self._lock = threading.Lock()
        self._closed = False
        self._finalizer = weakref.finalize(self, BufferPool._cleanup, self._all)

    def array(self, shape, dtype) -> np.ndarray:
        """A leased array; block(arr) tells which shared block backs it."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        with self._lock:
            free = self._free.get(nbytes)
            block = free.pop() if free else None
        if block is None:
            block = _Block(nbytes, self.shared)
            with self._lock:
                self._all.append(block)
        lease = (ctypes.c_uint8 * max(nbytes, 1)).from_buffer(block.buf, block.offset)
        weakref.finalize(lease, self._give_back, weakref.ref(self), block)
        arr = np.frombuffer(lease, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
        return arr

    @staticmethod
    def _give_back(pool_ref, block):
        pool = pool_ref()
        if pool is None or pool._closed:
            return
        with pool._lock:
            pool._free.setdefault(block.nbytes, []).append(block)

    def block_of(self, arr):
        """(path, nbytes) of the shared block under a leased array, for a worker to map."""
        lease = arr.base
        while lease is not None and not isinstance(lease, ctypes.Array):
            lease = getattr(lease, "base", None)
        if lease is None:
            return None
        addr = ctypes.addressof(lease)
        for b in self._all:
            if b.path and ctypes.addressof(ctypes.c_uint8.from_buffer(b.buf, b.offset)) == addr:
                return b.path
        return None

    @staticmethod
    def _cleanup(blocks):
        for b in blocks:
            b.release()

    def close(self):
        self._closed = True
        self._free.clear()
        self._finalizer()


def map_shared(path: str, shape, dtype, cache: dict) -> np.ndarray:
    """A worker's view of a shared block (mapped once per path)."""
    m = cache.get(path)
    if m is None:
        with open(path, "r+b") as f:
            m = mmap.mmap(f.fileno(), 0)
        cache[path] = m
    dtype = np.dtype(dtype)
    return np.frombuffer(m, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
