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
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from typing import Iterator, Optional

import numpy as np

from ..errors import RemoteReadError
from . import direct
from .base import StorageProvider
from .linkstats import IDLE_PART, LinkStats
from .retry import RetryPolicy

LISTING_RETRY_S = 30.0  # after a failed LIST, seconds before the folder is listed again
# botocore's request-phase retries (jittered; adaptive adds client-side rate limiting when S3
# throttles) and the timeouts: connect, and read = the longest silence of a connection before it
# is cut and the read retried. Response checksums only where an operation requires them: S3 sends
# none for range reads, which is how chunks are read (moto does, and CRC-ing them in Python cost
# as much CPU as the rest of the read).
S3_CONFIG = {"retries": {"max_attempts": 3, "mode": "adaptive"}, "connect_timeout": 10, "read_timeout": 20,
             "response_checksum_validation": "when_required"}


class FsspecProvider(StorageProvider):
    prefers_ranges = True

    def __init__(self, url: str, *, retries: int | None = None, **storage_options):
        try:
            import fsspec
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"Reading '{url}' needs fsspec (and s3fs/gcsfs for cloud URLs): "
                "pip install 'deeplake_loader[s3]'"
            ) from e
        self.root = url.rstrip("/")
        self.retry = RetryPolicy.default(retries)
        self.stats = LinkStats()
        s3 = self.root.split("://", 1)[0] in ("s3", "s3a")
        if s3:
            storage_options = {"skip_instance_cache": True, "max_concurrency": 1, **storage_options}
            storage_options["config_kwargs"] = {**S3_CONFIG, **(storage_options.get("config_kwargs") or {})}
        self.fs, self._base = fsspec.core.url_to_fs(self.root, **storage_options)
        self._base = self._base.rstrip("/")
        if s3 and hasattr(self.fs, "retries"):
            self.fs.retries = 1  # s3fs's documented class attribute: its loop would nest inside ours
        self._direct = None
        if s3:  # the connect and read timeouts botocore got (a caller's config_kwargs included)
            config = storage_options["config_kwargs"]
            self._direct = direct.for_filesystem(self.fs, timeouts=(config["connect_timeout"], config["read_timeout"]))
        self._listings: dict = {}
        self._reading = 0  # read_blob calls in flight
        self._lock = threading.Lock()

    def _path(self, key: str) -> str:
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
        """{name: (size, tag)} of the objects directly in ``folder`` (one LIST, remembered until a
        put or delete in that folder). ``tag`` is the ETag (or generation / size+mtime). A LIST
        that fails (no permission, or the network after every retry) gives {} for a while:
        chunks are then read whole, without their size or the cache."""
        with self._lock:
            got = self._listings.get(folder)
        if got is not None and got[0] > time.monotonic():
            return got[1]
        try:
            entries = self.retry.call(lambda: self._timed(lambda: self.fs.ls(self._path(folder), detail=True,
                                                                             refresh=True), small=True),
                                      self.url(folder))
            expires = float("inf")
        except (FileNotFoundError, NotADirectoryError):
            entries, expires = [], float("inf")
        except (PermissionError, RemoteReadError):
            entries, expires = [], time.monotonic() + LISTING_RETRY_S
        out = {}
        for e in entries:
            if e.get("type", "file") != "file":
                continue
            name = e["name"].rstrip("/").rsplit("/", 1)[-1]
            out[name] = (int(e.get("size") or 0), _tag(e))
        with self._lock:
            self._listings[folder] = (expires, out)
        return out

    def _forget(self, key: str) -> None:
        with self._lock:
            self._listings.pop(key.rsplit("/", 1)[0] if "/" in key else "", None)

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
        read in flight)."""
        size = self.size_of(key) if size is None else size
        if size is None or not getattr(self.fs, "async_impl", False):
            return self.get(key)
        from fsspec.asyn import sync

        with self._lock:
            self._reading += 1
            alone = self._reading == 1
        part = max(IDLE_PART, -(-size // parts)) if parts else self.stats.part_size(alone)
        try:
            if self._direct is not None and size:
                try:
                    return self._read_direct(key, size, part)
                except direct.Unsupported as e:  # this endpoint needs the full client: s3fs from now on
                    warnings.warn(f"deeplake_loader: direct range reads of '{self.root}' are off ({e}); "
                                  "reading through s3fs", RuntimeWarning, stacklevel=2)
                    self._direct = None
            return sync(self.fs.loop, self._read_parts, key, size, part)
        except (FileNotFoundError, IsADirectoryError):
            raise KeyError(key) from None
        finally:
            with self._lock:
                self._reading -= 1

    def _read_direct(self, key: str, size: int, part: int) -> np.ndarray:
        """read_blob through ``storage.direct``: the parts on threads of their own (the first on
        this one), each received into its slice of one buffer."""
        path, url = self._path(key), self.url(key)
        out = np.empty(size, np.uint8)  # not zero-filled: every byte is received into it
        view = memoryview(out)
        stop = threading.Event()  # set when a part failed for good: the others give up
        errors = []

        def one(start, end):
            def timed():
                t0 = time.monotonic()
                self._direct.read_into(path, start, view[start:end], stop)
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
            first = next((e for e in errors if not isinstance(e, InterruptedError)), errors[0])
            if isinstance(first, direct.WrongLength):
                raise _changed(url, first.start, first.end, first.got, size) from None
            raise first
        return out

    async def _read_parts(self, key: str, size: int, part: int):
        path, url = self._path(key), self.url(key)
        if size == 0:
            return b""
        if size <= part:  # one request: its bytes as they come
            return await self._read_one(path, url, 0, size, size)
        tasks = [asyncio.ensure_future(self._read_one(path, url, s, min(s + part, size), size))
                 for s in range(0, size, part)]
        try:
            parts = await asyncio.gather(*tasks)
        finally:  # one part failed for good: stop the others
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return b"".join(parts)

    async def _read_one(self, path, url, start, end, size):
        async def timed():
            t0 = time.monotonic()
            data = await self.fs._cat_file(path, start=start, end=end)
            self.stats.record(len(data), time.monotonic() - t0)
            return data

        data = await self.retry.acall(timed, url)
        if len(data) != end - start:
            raise _changed(url, start, end, len(data), size)
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
        base = self._path(prefix) if prefix else self._base
        if not self.fs.exists(base):
            return iter([])
        if self.fs.isfile(base):
            return iter([prefix])
        n = len(self._base) + 1
        return iter(p[n:] for p in self.fs.find(base))


def _changed(url, start, end, got, size) -> RemoteReadError:
    return RemoteReadError(f"'{url}' gave {got} bytes for bytes {start}..{end - 1}: the object is not the {size} "
                           "bytes its listing said (rewritten while being read?)", url=url)


def _tag(info: dict) -> str:
    for field in ("ETag", "etag", "md5Hash", "generation", "md5"):
        if info.get(field):
            return str(info[field]).strip('"')
    mtime = info.get("LastModified") or info.get("mtime") or info.get("updated") or ""
    return f"{info.get('size')}-{mtime}"
