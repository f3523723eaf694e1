"""The storage provider interface: a flat key/value store with range reads."""

from __future__ import annotations

from typing import Iterator, Optional


class StorageProvider:
    """Keys are '/'-separated paths relative to the dataset root.

    ``get`` raises ``KeyError`` for a missing key. ``put`` is atomic per key: a reader sees
    the old bytes or the new ones, never a partial write.
    """

    root: str = ""
    # remote stores: a single sample is read with two range requests (chunk header, then its bytes)
    prefers_ranges: bool = False
    # remote stores: observed latency and bandwidth (storage.linkstats.LinkStats), else None
    stats = None

    def get(self, key: str) -> bytes:
        raise NotImplementedError

    def get_range(self, key: str, start: int, end: Optional[int]) -> bytes:
        """Bytes [start, end) of the value at key (end=None: to the end)."""
        data = self.get(key)
        return data[start:end]

    def get_or_none(self, key: str) -> Optional[bytes]:
        try:
            return self.get(key)
        except KeyError:
            return None

    def read_blob(self, key: str, size: Optional[int] = None, parts: Optional[int] = None):
        """The whole value at key, bytes-like (a chunk: remote stores read it as parallel range
        requests, ``parts`` of them if given; the chunk cache keeps it on disk). KeyError if missing."""
        return self.get(key)

    def size_of(self, key: str) -> Optional[int]:
        """The value's size in bytes when known without reading it, else None."""
        return None

    def url(self, key: str) -> str:
        """Where key lives, for error messages."""
        return f"{self.root}/{key}"

    def get_many(self, keys) -> dict:
        """{key: value or None (missing)}; remote stores ask for them all at once."""
        return {k: self.get_or_none(k) for k in keys}

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def list(self, prefix: str = "") -> Iterator[str]:
        raise NotImplementedError

    def clear(self, prefix: str = "") -> None:
        for key in list(self.list(prefix)):
            self.delete(key)

    def __repr__(self):
        return f"{type(self).__name__}({self.root!r})"
