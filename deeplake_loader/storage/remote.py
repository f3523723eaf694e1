"""Any URL fsspec knows (s3://, gcs://, file://, ...), with HTTP range reads for chunks.

Reads are retried on transient failures (``storage.retry``) and timed (``storage.linkstats``).
``read_blob`` reads a whole chunk as parallel range requests when its size is known from the
directory listing (one LIST per directory, which also gives the ETags the local chunk cache
keys entries by). For s3 the provider owns its S3FileSystem (not fsspec's shared instance) so it
can tune it: botocore retries in ``adaptive`` mode and timeouts that cut a stalled connection
(``config_kwargs`` a caller passes win), s3fs's own retry loop down to one try (ours replaces it),
and whole-object reads without s3fs's extra HEAD request. Chunk reads of s3 objects skip s3fs's
event loop where they can: ``storage.direct`` receives each range straight into the chunk's buffer
on threads of its own.

Listings are a snapshot: one LIST per folder, kept for the life of the provider (one opened
dataset; every ``load()`` lists anew), forgotten when this provider writes to the folder, and
refreshed when a read finds an object other than listed. Every chunk read is checked against the
listing's size and ETag by what the server says (``read_checked``); when another writer has
rewritten the object since (Deep Lake appends to a tail chunk by rewriting it in place) the
folder is listed again and the chunk read anew, at most ``REREADS`` times, then
``RemoteReadError``. So a long-lived dataset never hands a truncated chunk to its reader, and the
chunk cache (``storage.cache``) only stores bytes under the ETag they were checked against.

A provider pickles (torch DataLoader workers with spawn, Accelerate, cloudpickle) as what opens it
again: the URL, the tries of the retry policy, the fsspec options it was given (credentials
included) and whether direct reads were turned off; its filesystem, connections, listings and
locks stay behind, and the copy makes its own on first use. A child made by fork() likewise
leaves the parent's filesystem, sockets and locks behind (it keeps the listings).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import warnings
import weakref
from typing import Iterator, Optional

import numpy as np

from ..errors import RemoteReadError
from . import direct
from .base import StorageProvider
from .linkstats import IDLE_PART, LinkStats
from .retry import RetryPolicy

LISTING_RETRY_S = 30.0  # after a failed LIST, seconds before the folder is listed again
REREADS = 2  # an object found other than listed is read again (after a new LIST) at most this often
# botocore's request-phase retries (jittered; adaptive adds client-side rate limiting when S3
# throttles) and the timeouts: connect, and read = the longest silence of a connection before it
# is cut and the read retried. Response checksums only where an operation requires them: S3 sends
# none for range reads, which is how chunks are read (moto does, and CRC-ing them in Python cost
# as much CPU as the rest of the read).
S3_CONFIG = {"retries": {"max_attempts": 3, "mode": "adaptive"}, "connect_timeout": 10, "read_timeout": 20,
             "response_checksum_validation": "when_required"}


class FsspecProvider(StorageProvider):
    """Pickles as what opens it again (URL, retries, the fsspec options given, creds included, and
    whether direct reads were turned off) plus the link's statistics; never its filesystem,
    connections, listings or locks. The filesystem is made on first use, here and in a copy."""

    prefers_ranges = True

    def __init__(self, url: str, *, retries: int | None = None, **storage_options):
        try:
            import fsspec  # noqa: F401 - checked here, used when the filesystem is opened
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"Reading '{url}' needs fsspec (and s3fs/gcsfs for cloud URLs): "
                "pip install 'deeplake_loader[s3]'"
            ) from e
        self.root = url.rstrip("/")
        self.retry = RetryPolicy.default(retries)
        self.stats = LinkStats()
        self._options = dict(storage_options)  # as given
        self._direct_off = False  # set when the endpoint needed what only botocore does
        self._fs = self._base = self._direct = None
        self._opening = threading.Lock()
        self._listings: dict = {}  # folder -> (expires at, {name: (size, tag)})
        self._listing_now: dict = {}  # folder -> Event of the LIST in flight
        self._reading = 0  # read_blob calls in flight
        self._lock = threading.Lock()
        _LIVE.add(self)

    def _forked(self) -> None:
        """In a child made by fork(): the parent's filesystem, kept-alive sockets (two processes
        reading responses off one connection would swap their bytes) and locks (one may have been
        held by a thread that does not exist here) are left behind; the listings are kept."""
        self._lock, self._opening = threading.Lock(), threading.Lock()
        self._listing_now, self._reading = {}, 0
        self._fs = self._base = self._direct = None
        self.stats._lock = threading.Lock()

    def __reduce__(self):
        return (_reopen, (self.root, self.retry.attempts, self._options, self._direct_off, self.stats))

    def _open(self):
        with self._opening:
            if self._fs is None:
                import fsspec

                options = dict(self._options)
                s3 = self.root.split("://", 1)[0] in ("s3", "s3a")
                if s3:
                    options = {"skip_instance_cache": True, "max_concurrency": 1, **options}
                    options["config_kwargs"] = {**S3_CONFIG, **(options.get("config_kwargs") or {})}
                fs, base = fsspec.core.url_to_fs(self.root, **options)
                if s3 and hasattr(fs, "retries"):
                    fs.retries = 1  # s3fs's documented class attribute: its loop would nest inside ours
                if s3 and not self._direct_off:  # the connect and read timeouts botocore got
                    config = options["config_kwargs"]
                    self._direct = direct.for_filesystem(fs, timeouts=(config["connect_timeout"],
                                                                       config["read_timeout"]))
                self._base = base.rstrip("/")
                self._fs = fs
        return self._fs

    @property
    def fs(self):
        """The fsspec filesystem (made on first use)."""
        return self._fs if self._fs is not None else self._open()

    @property
    def direct(self):
        """The ``storage.direct.DirectRanges`` chunk reads go through, or None (s3fs's own reads)."""
        if self._fs is None:
            self._open()
        return self._direct

    def _path(self, key: str) -> str:
        if self._fs is None:
            self._open()
        return f"{self._base}/{key}"

    def url(self, key: str) -> str:
        return f"{self.root}/{key}"

    def _timed(self, fn, small=False):
        """fn() (one request), its duration recorded by size (a listing counts as a small request)."""
        t0 = time.monotonic()
        out = fn()
        self.stats.record(0 if small else len(out), time.monotonic() - t0)
        return out

    def get(self, key: str) -> bytes:
        try:
            return self.retry.call(lambda: self._timed(lambda: self.fs.cat_file(self._path(key))), self.url(key))
        except (FileNotFoundError, IsADirectoryError):
            raise KeyError(key) from None

    def get_range(self, key: str, start: int, end: Optional[int]) -> bytes:
        try:
            return self.retry.call(lambda: self._timed(lambda: self.fs.cat_file(self._path(key), start=start, end=end)),
                                   self.url(key))
        except (FileNotFoundError, IsADirectoryError):
            raise KeyError(key) from None

    def get_many(self, keys) -> dict:
        """Values of several small keys (metadata) in one round trip: concurrent requests."""
        keys = list(keys)
        if len(keys) < 2 or not getattr(self.fs, "async_impl", False):
            return super().get_many(keys)
        from fsspec.asyn import sync

        async def one(key):
            try:
                return await self.retry.acall(lambda: self.fs._cat_file(self._path(key)), self.url(key))
            except (FileNotFoundError, IsADirectoryError):
                return None

        async def all_of():
            return await asyncio.gather(*(one(k) for k in keys))

        return dict(zip(keys, sync(self.fs.loop, all_of)))

    # ------------------------------------------------------------------------- whole chunks
    def listing(self, folder: str) -> dict:
        """{name: (size, tag)} of the objects directly in ``folder`` (one LIST). ``tag`` is the ETag
        (or generation / size+mtime). Remembered for the life of the provider (one opened
        dataset), until a put or delete in that folder, or until a read finds an object of it
        other than listed (``read_checked``). Threads asking for a folder being listed wait for
        that LIST rather than making their own. A LIST that fails (no permission, or the network
        after every retry) gives {} for a while: chunks are then read whole, without their size
        or the cache."""
        while True:
            with self._lock:
                got = self._listings.get(folder)
                if got is not None and got[0] > time.monotonic():
                    return got[1]
                pending = self._listing_now.get(folder)
                mine = pending is None
                if mine:
                    pending = self._listing_now[folder] = threading.Event()
            if mine:
                break
            pending.wait(self.retry.deadline)  # the LIST in flight; then its result, or our own LIST
        out, expires = {}, float("inf")
        try:
            try:
                entries = self.retry.call(lambda: self._timed(lambda: self.fs.ls(self._path(folder), detail=True,
                                                                                 refresh=True), small=True),
                                          self.url(folder))
            except (FileNotFoundError, NotADirectoryError):
                entries = []
            except (PermissionError, RemoteReadError):
                entries, expires = [], time.monotonic() + LISTING_RETRY_S
            for e in entries:
                if e.get("type", "file") != "file":
                    continue
                name = e["name"].rstrip("/").rsplit("/", 1)[-1]
                out[name] = (int(e.get("size") or 0), _tag(e))
        finally:
            with self._lock:
                if self._listing_now.get(folder) is pending:  # not forgotten while it was listed
                    del self._listing_now[folder]
                    self._listings[folder] = (expires, out)
            pending.set()
        return out

    def _forget(self, key: str) -> None:
        """The listing of key's folder is out of date: the next use lists it again."""
        self._forget_folder(key.rsplit("/", 1)[0] if "/" in key else "")

    def _forget_folder(self, folder: str) -> None:
        with self._lock:
            self._listings.pop(folder, None)
            pending = self._listing_now.pop(folder, None)  # a LIST in flight may predate the change
        if pending is not None:
            pending.set()

    def stat(self, key: str):
        """(size, tag) of key from its folder's listing, or None when the listing does not have it."""
        folder, _, name = key.rpartition("/")
        return self.listing(folder).get(name)

    def size_of(self, key: str) -> Optional[int]:
        st = self.stat(key)
        return None if st is None else st[0]

    def read_blob(self, key: str, size: Optional[int] = None, parts: Optional[int] = None):
        """The whole value at key (bytes-like), as parallel range requests: ``parts`` of them (each
        at least 1 MiB) if given, else of the link's part size (small ones when it is the only
        read in flight). Checked against its listing (``read_checked``) unless ``size`` is given."""
        if size is None:
            return self.read_checked(key, parts)[0]
        try:
            return self._read_sized(key, size, None, parts)
        except direct.Changed as e:
            raise _changed(self.url(key), e) from None

    def read_checked(self, key: str, parts: Optional[int] = None):
        """(the whole value at key, the ETag it was checked against, or None when its folder's
        listing does not have it). Each read is checked against the listing's size and ETag by
        what the server says (storage.direct: Content-Range's total and the response's ETag;
        through fsspec: the last range asks for one byte past the listed end, and every range must
        come back whole). When they differ (another writer rewrote the object, e.g. appended to a
        tail chunk) the folder is listed again and the object read anew, at most REREADS times;
        then RemoteReadError. A short or mismatched read is never returned."""
        folder, _, name = key.rpartition("/")
        for _ in range(1 + REREADS):
            st = self.listing(folder).get(name)
            if st is None:
                return self.get(key), None
            try:
                return self._read_sized(key, st[0], st[1], parts), st[1]
            except direct.Changed as e:
                changed = e
                self._forget_folder(folder)
        raise _changed(self.url(key), changed, tries=1 + REREADS)

    def _read_sized(self, key: str, size: int, tag: Optional[str], parts: Optional[int]):
        """The object at key, which should be ``size`` bytes with ETag ``tag`` (None: unknown);
        direct.Changed when the server says it is not."""
        if size == 0 or not getattr(self.fs, "async_impl", False):
            data = self.get(key)  # the whole object, however long it is
            if len(data) != size:
                raise direct.Changed(0, size, len(data), len(data), None, size, tag)
            return data
        from fsspec.asyn import sync

        with self._lock:
            self._reading += 1
            alone = self._reading == 1
        part = max(IDLE_PART, -(-size // parts)) if parts else self.stats.part_size(alone)
        try:
            if self._direct is not None:
                try:
                    return self._read_direct(key, size, tag, part)
                except direct.Unsupported as e:  # this endpoint needs the full client: s3fs from now on
                    warnings.warn(f"deeplake_loader: direct range reads of '{self.root}' are off ({e}); "
                                  "reading through s3fs", RuntimeWarning, stacklevel=2)
                    self._direct, self._direct_off = None, True
            return sync(self.fs.loop, self._read_parts, key, size, part)
        except (FileNotFoundError, IsADirectoryError):
            raise KeyError(key) from None
        finally:
            with self._lock:
                self._reading -= 1

    def _read_direct(self, key: str, size: int, tag: Optional[str], part: int) -> np.ndarray:
        """The object through ``storage.direct``: the parts on threads of their own (the first on
        this one), each received into its slice of one buffer and checked against (size, tag)."""
        path, url = self._path(key), self.url(key)
        out = np.empty(size, np.uint8)  # not zero-filled: every byte is received into it
        view = memoryview(out)
        stop = threading.Event()  # set when a part failed for good: the others give up
        errors = []
        reader = self._direct

        def one(start, end):
            def timed():
                t0 = time.monotonic()
                reader.read_into(path, start, view[start:end], stop, expect=(size, tag))
                self.stats.record(end - start, time.monotonic() - t0)

            try:
                self.retry.call(timed, url)
            except BaseException as e:  # noqa: BLE001 - raised below, on the caller's thread
                errors.append(e)
                stop.set()

        ranges = [(s, min(s + part, size)) for s in range(0, size, part)]
        threads = [threading.Thread(target=one, args=r, daemon=True, name="deeplake_loader-range") for r in ranges[1:]]
        for t in threads:
            t.start()
        one(*ranges[0])
        for t in threads:
            t.join()
        if errors:
            raise next((e for e in errors if not isinstance(e, InterruptedError)), errors[0])
        return out

    async def _read_parts(self, key: str, size: int, part: int):
        """The object through fsspec, in ranges of ``part`` bytes; the last asks for one byte past
        the listed end (any server stops at the object's end): if that byte comes, the object grew."""
        path, url = self._path(key), self.url(key)
        ranges = [(s, min(s + part, size)) for s in range(0, size, part)]
        if len(ranges) == 1:  # one request: its bytes as they come
            return await self._read_one(path, url, 0, size, size)
        tasks = [asyncio.ensure_future(self._read_one(path, url, s, e, size)) for s, e in ranges]
        try:
            parts = await asyncio.gather(*tasks)
        finally:  # one part failed for good: stop the others
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return b"".join(parts)

    async def _read_one(self, path, url, start, end, size):
        ask = end + 1 if end == size else end

        async def timed():
            t0 = time.monotonic()
            data = await self.fs._cat_file(path, start=start, end=ask)
            self.stats.record(len(data), time.monotonic() - t0)
            return data

        try:
            data = await self.retry.acall(timed, url)
        except (OSError, ValueError) as e:  # a range past the object's end (416): it shrank
            if "InvalidRange" not in str(e) and "416" not in str(e) and "not satisfiable" not in str(e).lower():
                raise
            raise direct.Changed(start, end, 0, None, None, size) from None
        if len(data) != end - start:
            raise direct.Changed(start, end, len(data), None, None, size)
        return data

    # --------------------------------------------------------------------------------- writes
    def put(self, key: str, data: bytes) -> None:
        self._forget(key)
        self.fs.pipe_file(self._path(key), bytes(data))

    def delete(self, key: str) -> None:
        self._forget(key)
        try:
            self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            pass

    def exists(self, key: str) -> bool:
        return self.fs.isfile(self._path(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix) if prefix else self._path("").rstrip("/")
        if not self.fs.exists(base):
            return iter([])
        if self.fs.isfile(base):
            return iter([prefix])
        n = len(self._base) + 1
        return iter(p[n:] for p in self.fs.find(base))


_LIVE: "weakref.WeakSet[FsspecProvider]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for p in list(_LIVE):
        p._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _reopen(url, retries, options, direct_off, stats) -> FsspecProvider:
    p = FsspecProvider(url, retries=retries, **options)
    p._direct_off, p.stats = direct_off, stats
    return p


def _changed(url, e, tries=1) -> RemoteReadError:
    again = f" {tries} times, listing its folder again each time" if tries > 1 else ""
    return RemoteReadError(f"'{url}' is not the object its listing described when read{again} (rewritten while "
                           f"being read?): {e}", url=url, attempts=tries)


def _tag(info: dict) -> str:
    for field in ("ETag", "etag", "md5Hash", "generation", "md5"):
        if info.get(field):
            return str(info[field]).strip('"')
    mtime = info.get("LastModified") or info.get("mtime") or info.get("updated") or ""
    return f"{info.get('size')}-{mtime}"
