"""The in-memory chunk cache of one opened dataset: parsed chunks, least recently used first out,
bounded by bytes (deeplake's ``load(..., memory_cache_size=MB)``) and shared by every tensor's
reader (and the loader's fetch window, which fills it from several threads)."""

from __future__ import annotations

import threading
from collections import OrderedDict

DEFAULT_MB = 256  # deeplake's default is 2000 MB; the loader streams chunks and needs few of them


def chunk_nbytes(chunk) -> int:
    n = len(chunk.data) + chunk.shapes.nbytes + chunk.bpos.nbytes
    if chunk.canvas is not None:
        n += chunk.canvas.nbytes
    return n


class ChunkLRU:
    def __init__(self, limit_mb: float = DEFAULT_MB):
        if isinstance(limit_mb, bool) or not isinstance(limit_mb, (int, float)) or limit_mb < 0:
            raise ValueError(f"memory_cache_size must be a number of MB >= 0, got {limit_mb!r}")
        self.limit = int(limit_mb * 1e6)
        self._items: OrderedDict = OrderedDict()  # key -> (chunk, nbytes)
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items

    def put(self, key, chunk) -> None:
        n = chunk_nbytes(chunk)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if n > self.limit:
                return
            self._items[key] = (chunk, n)
            self._bytes += n
            while self._bytes > self.limit:
                _, (_, m) = self._items.popitem(last=False)
                self._bytes -= m

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self, prefix=None) -> None:
        """Drop every chunk (or those whose key's first element is ``prefix``)."""
        with self._lock:
            if prefix is None:
                self._items.clear()
                self._bytes = 0
                return
            for key in [k for k in self._items if k[0] == prefix]:
                self._bytes -= self._items.pop(key)[1]
