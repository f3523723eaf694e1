"""The fetch window: the primary tensor's chunks of an epoch read ahead of the fetch stage, several at
once, and handed over in plan order.

The plan's steps name every chunk the epoch loads, in order. ``ChunkWindow`` keeps reads of the
next ones in flight on a few threads (``reader.load_chunk``: memory cache, then the storage's
``read_blob`` — the on-disk cache or parallel range requests), bounded by

* a count of chunk reads in flight: ``fetch_window`` of ``load()``, else
  $DEEPLAKE_LOADER_FETCH_WINDOW, else sized from the link (``storage.linkstats``: the requests
  Little's law asks for, divided by the requests one chunk takes); 2 for a local disk;
* bytes: chunks read or being read and not yet taken. Without shuffle the budget is
  ``WINDOW_MB``; with shuffle it is an eighth of ``buffer_size``, taken off the reservoir's share
  (``split_budget``), so shuffle buffer + window stay within the buffer size the user gave.

The first chunk not yet read is always admitted, whatever its size. ``take(name)`` waits for the
next chunk of the plan and returns it; a read error is raised there, naming the rows the chunk
would have served. The window changes when chunks arrive, never which chunks the steps use or in
what order: the rows an epoch yields, and their order, are the same for any window. A step the
caller skips (a resumed epoch) only releases its chunk.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque

from ..errors import RemoteReadError

WINDOW_MB = 256
LOCAL_AHEAD = 2  # chunk reads in flight on a local disk: one being used, one ahead
MAX_THREADS = 32
_ENV = "DEEPLAKE_LOADER_FETCH_WINDOW"


def check_window(value):
    """``fetch_window`` as given to load(): None (automatic) or an int >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"fetch_window must be an int >= 1 (chunk reads in flight) or None, got {value!r}")
    return value


def requested_window(value=None):
    """The window a loader was asked for: ``value`` (load's fetch_window), else the environment's."""
    if value is not None:
        return value
    env = os.environ.get(_ENV)
    if not env:
        return None
    try:
        return check_window(int(env))
    except ValueError:
        raise ValueError(f"{_ENV}={env!r} must be an int >= 1 (chunk reads in flight)") from None


def split_budget(buffer_bytes: int, shuffle: bool):
    """(reservoir bytes, window bytes) of one epoch."""
    if not shuffle:
        return buffer_bytes, WINDOW_MB * 1_000_000
    window = max(1, buffer_bytes // 8)
    return max(1, buffer_bytes - window), window


class _Entry:
    __slots__ = ("name", "nbytes", "takes", "done", "chunk", "error")

    def __init__(self, name, nbytes):
        self.name, self.nbytes, self.takes = name, nbytes, 1
        self.done, self.chunk, self.error = False, None, None


class ChunkWindow:
    """Chunks ``names`` (plan order, repeats allowed) of ``reader``, read ahead. Use as a context
    manager (or call ``close``): closing stops the reading threads."""

    def __init__(self, reader, names, *, max_bytes: int, window=None):
        self.reader = reader
        self.plan = list(names)
        self.max_bytes = int(max_bytes)
        self.fixed = requested_window(window)
        self._cv = threading.Condition()
        self._entries: dict = {}  # name -> _Entry, submitted and not fully taken
        self._jobs: deque = deque()
        self._threads: list = []
        self._idle = 0
        self._next_take = self._next_submit = 0
        self._in_flight = 0
        self._bytes = 0
        self._seen_sizes: list = []
        self._closed = False
        self.peak_in_flight = self.peak_bytes = 0  # for tests and benches
        self._fill()

    # ------------------------------------------------------------------------------- sizing
    def _size(self, name) -> int:
        size = self.reader.chunk_size(name)
        if size is None:
            seen = self._seen_sizes
            size = sum(seen) // len(seen) if seen else int(self.reader.meta.get("max_chunk_size") or (16 << 20))
        return int(size)

    def limit(self) -> int:
        """Chunk reads to keep in flight now."""
        if self.fixed is not None:
            return self.fixed
        storage = self.reader.storage
        stats = storage.stats
        if stats is None:
            return LOCAL_AHEAD
        per_chunk = storage.requests_for(self._typical_size())
        return max(1, min(MAX_THREADS, math.ceil(stats.window() / per_chunk)))

    def _typical_size(self) -> int:
        seen = self._seen_sizes
        return sum(seen) // len(seen) if seen else self._size(self.plan[0]) if self.plan else 1

    # ------------------------------------------------------------------------- admission
    def _fill(self) -> None:
        """Submit the next reads the count and byte budgets allow. Called with or without the lock
        held by this thread (it takes it)."""
        with self._cv:
            if self._closed:
                return
            limit = self.limit()
            while self._next_submit < len(self.plan):
                name = self.plan[self._next_submit]
                entry = self._entries.get(name)
                if entry is not None:  # already in the window: one more take of it
                    entry.takes += 1
                    self._next_submit += 1
                    continue
                cached = self.reader.is_cached(name)
                size = 0 if cached else self._size(name)
                busy = self._bytes > 0 or self._in_flight > 0
                wanted_now = self._next_submit < self._next_take  # the chunk take() waits for
                if busy and not wanted_now and (self._in_flight >= limit or self._bytes + size > self.max_bytes):
                    break
                entry = _Entry(name, size)
                self._entries[name] = entry
                self._bytes += size
                self._in_flight += 1
                self._next_submit += 1
                self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
                self.peak_bytes = max(self.peak_bytes, self._bytes)
                self._jobs.append(entry)
                if len(self._jobs) > self._idle and len(self._threads) < MAX_THREADS:
                    t = threading.Thread(target=self._work, daemon=True, name="deeplake_loader-window")
                    self._threads.append(t)
                    t.start()
                else:
                    self._cv.notify_all()

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._jobs and not self._closed:
                    self._idle += 1
                    self._cv.wait()
                    self._idle -= 1
                if self._closed:
                    return
                entry = self._jobs.popleft()
            try:
                chunk, error = self.reader.load_chunk(entry.name), None
            except BaseException as e:  # noqa: BLE001 - raised by take()
                chunk, error = None, e
            with self._cv:
                entry.chunk, entry.error, entry.done = chunk, error, True
                self._in_flight -= 1
                if chunk is not None:
                    actual = len(chunk.data)
                    if self._entries.get(entry.name) is entry:  # not released (skipped) meanwhile
                        self._bytes += actual - entry.nbytes
                        entry.nbytes = actual
                        self.peak_bytes = max(self.peak_bytes, self._bytes)
                    self._seen_sizes.append(actual)
                    del self._seen_sizes[:-16]
                self._cv.notify_all()
            self._fill()

    # ------------------------------------------------------------------------------ taking
    def take(self, name, rows=None):
        """The chunk ``name`` of the next step; steps skipped since the last take are released.
        ``rows``: the rows it serves, named by a read error."""
        with self._cv:
            pos = self._next_take
            while pos < len(self.plan) and self.plan[pos] != name:
                pos += 1
            if pos < len(self.plan):
                for p in range(self._next_take, min(pos, self._next_submit)):  # skipped steps
                    self._release(self._entries.get(self.plan[p]))
                self._next_submit = max(self._next_submit, pos)
                self._next_take = pos + 1
        if pos == len(self.plan):  # not a chunk of this plan: read it here
            return self._direct(name, rows)
        self._fill()
        with self._cv:
            entry = self._entries[name]
            while not entry.done and not self._closed:
                self._cv.wait(0.1)
            self._release(entry)
        self._fill()
        if entry.error is not None:
            raise self._named(entry.error, rows)
        return entry.chunk

    def _direct(self, name, rows):
        try:
            return self.reader.load_chunk(name)
        except RemoteReadError as e:
            raise self._named(e, rows) from e.__cause__

    @staticmethod
    def _named(error, rows):
        if isinstance(error, RemoteReadError) and rows is not None:
            named = error.naming(rows=rows)
            named.__cause__ = error.__cause__
            return named
        return error

    def _release(self, entry) -> None:
        """One take of ``entry`` done (lock held); its bytes leave the window with the last."""
        if entry is None:
            return
        entry.takes -= 1
        if entry.takes <= 0 and self._entries.get(entry.name) is entry:
            del self._entries[entry.name]
            self._bytes -= entry.nbytes
            self._cv.notify_all()

    # ----------------------------------------------------------------------------- lifetime
    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._jobs.clear()
            self._entries.clear()
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = [t for t in self._threads if t.is_alive()]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
