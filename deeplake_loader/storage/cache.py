"""The local chunk cache: a bounded on-disk LRU of a remote dataset's chunks, shared by every process
on the host (DDP ranks, a restarted job), behind deeplake's ``load(..., local_cache_size=MB)``.

Layout: ``<cache dir>/<sha256(dataset URL)[:24]>/<2 hex>/<62 hex>``, one file per chunk, named by
the hash of (chunk key, ETag). The chunk key holds the commit (``versions/<commit>/...``) and the
chunk's name; the ETag, from the folder's listing, changes whenever the object is rewritten, so a
chunk updated in place at a branch head is never served stale. Each file is the chunk's bytes
followed by a 16-byte trailer (magic, length) that a read checks, and is written to a temporary
name in the same folder and renamed: a killed writer leaves at most a temporary file (removed by a
later eviction), never a partial chunk under a real name, and readers never see a file half
written. Several processes may fill the cache at once: a rename replaces a file atomically, and a
file deleted while another process reads it stays readable through the open handle.

LRU by modification time (a hit touches the file). Each process counts the bytes it adds; past an
eighth of the limit it scans the folder under an ``flock`` and deletes the oldest files until the
total is under 90% of ``local_cache_size``. Where to: ``$DEEPLAKE_LOADER_CACHE_DIR``, else
``$LOCAL_CACHE_PREFIX/deeplake_loader`` (deeplake's variable), else
``~/.cache/deeplake_loader/chunks``.

Why not fsspec's ``filecache``/``blockcache``: they key entries by path only (no ETag: an updated
chunk would be served stale), bound the cache by age rather than bytes, keep one metadata file
that concurrent processes rewrite, and ``filecache`` fetches whole files itself, outside the
loader's fetch window and retries. What they do well (a hashed file per object) is kept here.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import threading
import time
from typing import Iterator, Optional

from .base import StorageProvider

_TRAILER = struct.Struct("<8sQ")
_MAGIC = b"DLLCHNK1"
TMP_MAX_AGE = 600.0  # seconds after which a temporary file is a dead writer's
USE_LOCAL_CACHE_MB = 20_000  # ds.pytorch(use_local_cache=True) on a dataset loaded without local_cache_size


def default_dir() -> str:
    if os.environ.get("DEEPLAKE_LOADER_CACHE_DIR"):
        return os.path.expanduser(os.environ["DEEPLAKE_LOADER_CACHE_DIR"])
    if os.environ.get("LOCAL_CACHE_PREFIX"):
        return os.path.join(os.path.expanduser(os.environ["LOCAL_CACHE_PREFIX"]), "deeplake_loader")
    return os.path.expanduser("~/.cache/deeplake_loader/chunks")


class ChunkCache:
    """Chunks of the dataset at ``url`` on local disk, at most ``limit_bytes`` of them."""

    def __init__(self, url: str, limit_bytes: int, root: Optional[str] = None, *, tmp_max_age: float = TMP_MAX_AGE):
        self.url, self.limit = url, int(limit_bytes)
        self.dir = os.path.join(root or default_dir(), hashlib.sha256(url.encode()).hexdigest()[:24])
        self.tmp_max_age = tmp_max_age
        os.makedirs(self.dir, exist_ok=True)
        label = os.path.join(self.dir, "URL")
        if not os.path.exists(label):  # for people looking at the folder
            self._write_atomic(label, url.encode())
        self._added = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self.evict()

    def _file(self, key: str, tag: str) -> str:
        h = hashlib.sha256(f"{key}\0{tag}".encode()).hexdigest()
        return os.path.join(self.dir, h[:2], h[2:])

    # ------------------------------------------------------------------------------- reads
    def get(self, key: str, tag: str):
        """The chunk's bytes, or None (not cached, or a damaged file, which is removed)."""
        path = self._file(key, tag)
        try:
            f = open(path, "rb")
        except OSError:
            self.misses += 1
            return None
        with f:
            size = os.fstat(f.fileno()).st_size - _TRAILER.size
            data = f.read(size) if size >= 0 else b""
            trailer = f.read(_TRAILER.size)
        if size < 0 or len(data) != size or len(trailer) != _TRAILER.size or _TRAILER.unpack(trailer) != (_MAGIC, size):
            self._remove(path)
            self.misses += 1
            return None
        self.hits += 1
        try:
            os.utime(path)
        except OSError:
            pass
        return data

    def get_range(self, key: str, tag: str, start: int, end: Optional[int]):
        """Bytes [start, end) of a cached chunk, or None when it is not cached."""
        path = self._file(key, tag)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size - _TRAILER.size
                f.seek(max(0, size))
                if size < 0 or _TRAILER.unpack(f.read(_TRAILER.size)) != (_MAGIC, size):
                    return None
                end = size if end is None else min(end, size)
                f.seek(start)
                return f.read(max(0, end - start))
        except (OSError, struct.error):
            return None

    # ------------------------------------------------------------------------------ writes
    def put(self, key: str, tag: str, data) -> None:
        n = len(data)
        if n + _TRAILER.size > self.limit:
            return
        path = self._file(key, tag)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._write_atomic(path, data, _TRAILER.pack(_MAGIC, n))
        with self._lock:
            self._added += n + _TRAILER.size
            due = self._added > self.limit // 8
        if due:
            self.evict()

    @staticmethod
    def _write_atomic(path: str, *parts) -> None:
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        try:
            with open(tmp, "wb") as f:
                for p in parts:
                    f.write(p)
            os.replace(tmp, path)
        except BaseException:
            ChunkCache._remove(tmp)
            raise

    @staticmethod
    def _remove(path: str) -> None:
        try:
            os.unlink(path)
        except OSError:
            pass

    def _files(self) -> Iterator[os.DirEntry]:
        for sub in os.scandir(self.dir):
            if sub.is_dir(follow_symlinks=False) and len(sub.name) == 2:
                yield from os.scandir(sub.path)

    def evict(self) -> None:
        """Bring the cache under its limit (oldest first) and remove dead writers' temporary files;
        one process at a time."""
        with open(os.path.join(self.dir, ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                now, entries, total = time.time(), [], 0
                for e in self._files():
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if ".tmp-" in e.name:
                        if now - st.st_mtime > self.tmp_max_age:
                            self._remove(e.path)
                        continue
                    entries.append((st.st_mtime, st.st_size, e.path))
                    total += st.st_size
                if total > self.limit:
                    entries.sort()
                    target = int(self.limit * 0.9)
                    for _, size, path in entries:
                        if total <= target:
                            break
                        self._remove(path)
                        total -= size
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        with self._lock:
            self._added = 0

    def size(self) -> int:
        """Bytes of the cached chunks (a scan)."""
        total = 0
        for e in self._files():
            if ".tmp-" not in e.name:
                try:
                    total += e.stat(follow_symlinks=False).st_size
                except OSError:
                    pass
        return total


class CachingProvider(StorageProvider):
    """A remote provider with the chunk cache in front of ``read_blob`` (chunk reads) and of range
    reads of cached chunks; everything else goes straight to the remote provider. Without a cache
    (``local_cache_size`` 0, deeplake's default) it only passes calls through."""

    def __init__(self, inner, limit_mb: float = 0, root: Optional[str] = None):
        self.inner = inner
        self.root = inner.root
        self.prefers_ranges = inner.prefers_ranges
        self.stats = inner.stats
        self.cache: Optional[ChunkCache] = None
        if limit_mb:
            self.enable(limit_mb, root)

    def enable(self, limit_mb: float, root: Optional[str] = None) -> None:
        """Turn the cache on (or change its limit), e.g. for ``ds.pytorch(use_local_cache=True)``."""
        if isinstance(limit_mb, bool) or not isinstance(limit_mb, (int, float)) or limit_mb < 0:
            raise ValueError(f"local_cache_size must be a number of MB >= 0, got {limit_mb!r}")
        if not limit_mb:
            self.cache = None
            return
        self.cache = ChunkCache(self.root, int(limit_mb * 1e6), root)

    @property
    def fs(self):
        return self.inner.fs

    @property
    def retry(self):
        return self.inner.retry

    def url(self, key: str) -> str:
        return self.inner.url(key)

    def read_blob(self, key: str, size: Optional[int] = None, parts: Optional[int] = None):
        cache = self.cache
        st = self.inner.stat(key) if cache is not None else None
        if st is None:
            return self.inner.read_blob(key, size, parts)
        data = cache.get(key, st[1])
        if data is None:
            data = self.inner.read_blob(key, st[0], parts)
            cache.put(key, st[1], data)
        return data

    def get_range(self, key: str, start: int, end: Optional[int]) -> bytes:
        cache = self.cache
        if cache is not None:
            st = self.inner.stat(key)
            if st is not None:
                got = cache.get_range(key, st[1], start, end)
                if got is not None:
                    return got
        return self.inner.get_range(key, start, end)

    def size_of(self, key: str) -> Optional[int]:
        return self.inner.size_of(key)

    def listing(self, folder: str) -> dict:
        return self.inner.listing(folder)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def get_many(self, keys) -> dict:
        return self.inner.get_many(keys)

    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, data)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        return self.inner.list(prefix)
