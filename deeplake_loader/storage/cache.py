"""The local chunk cache: a bounded on-disk LRU of a remote dataset's chunks, shared by every process
of this user on the host (DDP ranks, a restarted job), behind deeplake's ``load(...,
local_cache_size=MB)``.

Layout: ``<root>/<sha256(dataset URL)[:24]>/<2 hex>/<62 hex>``, one file per chunk, named by the
hash of (chunk key, ETag). The chunk key holds the commit (``versions/<commit>/...``) and the
chunk's name; the ETag changes whenever the object is rewritten, so a chunk updated in place at a
branch head is never served stale. A chunk is stored only under the ETag its bytes were checked
against when they were read (``storage.remote``: the server's total length and ETag of the
response), so a short or mismatched read is never cached.

Private and verified (``storage.private``): the dataset's directory and its sub-directories are
0700 and this user's, the files 0600; a directory someone else owns or can write to is refused
with ``CacheDirError``. Each file is the chunk's bytes followed by a trailer (magic, length, and a
BLAKE2b of the bytes keyed by dataset URL, chunk key and ETag, so an entry is valid only for the
chunk it names): a read checks it before serving anything, and a file that does not match (torn,
damaged, or not what was written for that chunk) is a miss and is removed. A range read of an
entry checks the whole file once per process. Entries are written to a fresh temporary name in
the same directory (``O_EXCL | O_NOFOLLOW``) and renamed: a killed writer leaves at most a
temporary file, never a partial chunk under a real name, and a file deleted while another process
reads it stays readable through the open handle.

Bounded by bytes across processes: the bytes in use (entries plus the temporary files being
written) are counted in the ``.lock`` file under an ``flock``. A writer reserves its entry's bytes
there before creating its temporary file (whose name carries the reservation), evicting the least
recently used entries first if the reservation would pass ``local_cache_size`` (down to 90% of
it, so that scans are rare); the count is recomputed by a scan of the folder whenever an eviction
runs (and when a cache is opened), which also corrects drift (a killed writer's reservation, a
file removed by hand) and removes dead writers' temporary files. So at every moment the folder
holds at most the limit, whatever the number of processes filling it. LRU by modification time: a
hit sets it (``clock``, the wall clock unless a test gives its own).

Where: ``$DEEPLAKE_LOADER_CACHE_DIR``, else ``$LOCAL_CACHE_PREFIX/deeplake_loader`` (deeplake's
variable), else ``~/.cache/deeplake_loader/chunks``.

Why not fsspec's ``filecache``/``blockcache``: they key entries by path only (no ETag: an updated
chunk would be served stale), bound the cache by age rather than bytes, keep one metadata file
that concurrent processes rewrite, and ``filecache`` fetches whole files itself, outside the
loader's fetch window and retries. What they do well (a hashed file per object) is kept here. The
lock is ``fcntl.flock`` rather than the ``filelock`` package: on Linux ``filelock`` takes the same
flock, and the count lives in the locked file itself.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import stat
import struct
import time
from collections import OrderedDict
from typing import Iterator, Optional

from .base import StorageProvider
from .private import create_new, open_own, private_dir

_TRAILER = struct.Struct("<8sQ32s")  # magic, length of the chunk, keyed BLAKE2b-256 of it
_MAGIC = b"DLLCHNK2"
_COUNT = struct.Struct("<Q")  # bytes in use, at the start of the .lock file
TMP_MAX_AGE = 600.0  # seconds after which a temporary file is a dead writer's
USE_LOCAL_CACHE_MB = 20_000  # ds.pytorch(use_local_cache=True) on a dataset loaded without local_cache_size
KEEP_AFTER_EVICTION = 0.9  # an eviction frees room down to this share of the limit
_VERIFIED_MAX = 4096  # entries whose hash a process remembers having checked (for range reads)
_TEMP_TRIES = 3


def default_dir() -> str:
    if os.environ.get("DEEPLAKE_LOADER_CACHE_DIR"):
        return os.path.expanduser(os.environ["DEEPLAKE_LOADER_CACHE_DIR"])
    if os.environ.get("LOCAL_CACHE_PREFIX"):
        return os.path.join(os.path.expanduser(os.environ["LOCAL_CACHE_PREFIX"]), "deeplake_loader")
    return os.path.expanduser("~/.cache/deeplake_loader/chunks")


class ChunkCache:
    """Chunks of the dataset at ``url`` on local disk, at most ``limit_bytes`` of them. Pickles as
    its settings (URL, limit, root): the copy opens the folder again (and checks it) where it lands."""

    def __init__(self, url: str, limit_bytes: int, root: Optional[str] = None, *, tmp_max_age: float = TMP_MAX_AGE,
                 clock=time.time):
        self.url, self.limit = url, int(limit_bytes)
        self.root = os.path.abspath(root or default_dir())
        self.dir = os.path.join(self.root, hashlib.sha256(url.encode()).hexdigest()[:24])
        self.tmp_max_age, self.clock = tmp_max_age, clock
        self.hits = self.misses = 0
        self._subdirs: set = set()  # sub-directories checked by this process
        self._verified: OrderedDict = OrderedDict()  # (path, inode, size) of entries whose hash was checked
        private_dir(self.root, root=True)
        private_dir(self.dir)
        label = os.path.join(self.dir, "URL")
        if not os.path.exists(label):  # for people looking at the folder
            self._write_new(label, [url.encode()])
        self.evict()

    def __reduce__(self):
        return (_reopen, (self.url, self.limit, self.root, self.tmp_max_age, self.clock))

    def _entry(self, key: str, tag: str):
        """(file path, key of the entry's hash) of the chunk ``key`` at ETag ``tag``."""
        h = hashlib.sha256(f"{key}\0{tag}".encode()).hexdigest()
        return os.path.join(self.dir, h[:2], h[2:]), hashlib.sha256(f"{self.url}\0{key}\0{tag}".encode()).digest()

    def _file(self, key: str, tag: str) -> str:
        return self._entry(key, tag)[0]

    # ------------------------------------------------------------------------------- reads
    def _open_checked(self, path: str, mac: bytes, whole: bool):
        """(file object, size of the chunk, its bytes if read) of a valid entry, else None (the
        file, if any, removed). ``whole``: read and check it even if checked before."""
        got = open_own(path)
        if got is None:
            if os.path.lexists(path):  # a link, or not this user's: never served
                self._remove(path)
            return None
        fd, st = got
        f = os.fdopen(fd, "rb")
        size = st.st_size - _TRAILER.size
        seen = (path, st.st_ino, st.st_size)
        if size >= 0 and not whole and seen in self._verified:
            return f, size, None
        data = f.read(size) if size >= 0 else b""
        trailer = f.read(_TRAILER.size)
        if (size < 0 or len(data) != size or len(trailer) != _TRAILER.size
                or _TRAILER.unpack(trailer) != (_MAGIC, size, _digest(mac, data))):
            f.close()
            self._remove(path)
            return None
        self._verified[seen] = True
        while len(self._verified) > _VERIFIED_MAX:
            self._verified.popitem(last=False)
        return f, size, data

    def get(self, key: str, tag: str):
        """The chunk's bytes, or None (not cached, or a file that does not check out, which is removed)."""
        path, mac = self._entry(key, tag)
        got = self._open_checked(path, mac, whole=True)
        if got is None:
            self.misses += 1
            return None
        f, _, data = got
        with f:
            t = self.clock()
            try:
                os.utime(f.fileno(), (t, t))  # most recently used
            except OSError:
                pass
        self.hits += 1
        return data

    def get_range(self, key: str, tag: str, start: int, end: Optional[int]):
        """Bytes [start, end) of a cached chunk, or None when it is not cached (or does not check out)."""
        path, mac = self._entry(key, tag)
        got = self._open_checked(path, mac, whole=False)
        if got is None:
            return None
        f, size, data = got
        with f:
            end = size if end is None else min(end, size)
            if data is not None:
                return data[start:end]
            f.seek(start)
            return f.read(max(0, end - start))

    # ------------------------------------------------------------------------------ writes
    def put(self, key: str, tag: str, data) -> bool:
        """Keep ``data`` (the chunk's bytes as read at ETag ``tag``). False when it was not kept:
        larger than the cache, or no room (every byte is taken by other writers' reservations)."""
        view = memoryview(data).cast("B")
        n = view.nbytes + _TRAILER.size
        if n > self.limit:
            return False
        path, mac = self._entry(key, tag)
        sub = os.path.dirname(path)
        if sub not in self._subdirs:
            private_dir(sub)
            self._subdirs.add(sub)
        trailer = _TRAILER.pack(_MAGIC, view.nbytes, _digest(mac, view))
        with _Count(self.dir) as count:
            used = count.get()
            if used is None or used + n > self.limit:
                used = self._scan(count, need=n)
                if used + n > self.limit:
                    return False
            made = self._new_temp(path, n)
            if made is None:
                return False
            count.set(used + n)  # reserved before the temporary file grows
        fd, tmp = made
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(view)
                f.write(trailer)
                f.flush()  # before the times are set: a later write would set them again
                t = self.clock()
                os.utime(f.fileno(), (t, t))
            os.replace(tmp, path)
        except BaseException:
            self._remove(tmp)
            with _Count(self.dir) as count:
                used = count.get()
                if used is not None:
                    count.set(max(0, used - n))
            raise
        return True

    def _new_temp(self, path: str, reserved: int):
        """(fd, name) of a new temporary file beside ``path`` whose name carries the bytes
        reserved for it; None if no fresh name could be created."""
        for _ in range(_TEMP_TRIES):
            tmp = f"{path}.tmp-{reserved}-{os.getpid()}-{secrets.token_hex(8)}"
            try:
                return create_new(tmp), tmp
            except FileExistsError:
                continue
        return None

    def _write_new(self, path: str, parts) -> None:
        made = self._new_temp(path, 0)
        if made is None:
            return
        fd, tmp = made
        try:
            with os.fdopen(fd, "wb") as f:
                for p in parts:
                    f.write(p)
            os.replace(tmp, path)
        except BaseException:
            self._remove(tmp)
            raise

    @staticmethod
    def _remove(path: str) -> None:
        try:
            os.unlink(path)
        except OSError:
            pass

    # ---------------------------------------------------------------------------- eviction
    def _files(self) -> Iterator[os.DirEntry]:
        """Every file in the entry folders (each folder checked: this user's, private)."""
        for sub in os.scandir(self.dir):
            if len(sub.name) == 2 and not sub.name.startswith("."):
                if sub.path not in self._subdirs:
                    private_dir(sub.path)
                    self._subdirs.add(sub.path)
                yield from os.scandir(sub.path)

    def _scan(self, count: "_Count", need: int = 0) -> int:
        """With the lock held: the bytes in use (entries, and the reservations of temporary files
        being written), after evicting the least recently used entries if ``need`` more bytes would
        not fit (down to KEEP_AFTER_EVICTION of the limit); dead writers' temporary files and files
        that are not this user's regular files are removed. The count is stored."""
        now, me, entries, total = time.time(), os.geteuid(), [], 0
        for e in self._files():
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if ".tmp-" in e.name:
                if now - st.st_mtime > self.tmp_max_age:
                    self._remove(e.path)
                else:
                    total += max(st.st_size, _reserved(e.name))
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_uid != me:
                self._remove(e.path)
                continue
            entries.append((st.st_mtime_ns, e.path, st.st_size))
            total += st.st_size
        if total + need > self.limit:
            entries.sort()
            target = int(self.limit * KEEP_AFTER_EVICTION) - need
            for _, path, size in entries:
                if total <= target:
                    break
                self._remove(path)
                total -= size
        count.set(total)
        return total

    def evict(self) -> None:
        """Bring the cache under its limit (least recently used first), recount the bytes in use
        and remove dead writers' temporary files; one process at a time."""
        with _Count(self.dir) as count:
            self._scan(count)

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

    def in_use(self) -> Optional[int]:
        """The bytes counted in use (entries and reservations), as the writers keep the count."""
        with _Count(self.dir) as count:
            return count.get()


def _reopen(url, limit, root, tmp_max_age, clock) -> ChunkCache:
    return ChunkCache(url, limit, root, tmp_max_age=tmp_max_age, clock=clock)


def _digest(mac: bytes, data) -> bytes:
    return hashlib.blake2b(data, digest_size=32, key=mac).digest()


def _reserved(name: str) -> int:
    """Bytes a temporary file's name says its writer reserved (0 for names of older versions)."""
    head = name.rpartition(".tmp-")[2].split("-", 1)[0]
    return int(head) if head.isdigit() else 0


class _Count:
    """The cache's lock (an flock of ``.lock``, held by one process, and one thread, at a time:
    each holder opens the file anew) and the count of bytes in use stored in it."""

    def __init__(self, folder: str):
        self.path = os.path.join(folder, ".lock")

    def __enter__(self) -> "_Count":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            if stat.S_IMODE(os.fstat(self.fd).st_mode) != 0o600:
                os.fchmod(self.fd, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def get(self) -> Optional[int]:
        raw = os.pread(self.fd, _COUNT.size, 0)
        return _COUNT.unpack(raw)[0] if len(raw) == _COUNT.size else None

    def set(self, value: int) -> None:
        os.pwrite(self.fd, _COUNT.pack(max(0, int(value))), 0)

    def __exit__(self, *exc):
        os.close(self.fd)  # releases the flock


class CachingProvider(StorageProvider):
    """A remote provider with the chunk cache in front of ``read_blob`` (chunk reads) and of range
    reads of cached chunks; everything else goes straight to the remote provider. Without a cache
    (``local_cache_size`` 0, deeplake's default) it only passes calls through. A miss is read with
    ``inner.read_checked`` and kept under the ETag the bytes were checked against. Pickles as its
    remote provider and its cache's settings."""

    def __init__(self, inner, limit_mb: float = 0, root: Optional[str] = None):
        self.inner = inner
        self.root = inner.root
        self.prefers_ranges = inner.prefers_ranges
        self.stats = inner.stats
        self.cache: Optional[ChunkCache] = None
        if limit_mb:
            self.enable(limit_mb, root)

    def __reduce__(self):
        return (_caching, (self.inner, self.cache))

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
        if cache is None:
            return self.inner.read_blob(key, size, parts)
        st = self.inner.stat(key)
        if st is not None:
            data = cache.get(key, st[1])
            if data is not None:
                return data
        data, tag = self.inner.read_checked(key, parts)
        if tag is not None:
            cache.put(key, tag, data)
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


def _caching(inner, cache) -> CachingProvider:
    p = CachingProvider(inner)
    p.cache = cache
    return p
