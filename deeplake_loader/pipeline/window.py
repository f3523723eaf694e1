"""The fetch window: the primary tensor's chunks of an epoch read ahead of the fetch stage, several at
once, and handed over in plan order.

The plan's steps name every chunk the epoch loads, in order. ``ChunkWindow`` keeps reads of the
next ones in flight on a few threads (``reader.load_chunk``: memory cache, then the storage's
``read_blob`` — the on-disk cache or parallel range requests), bounded by

* a count of chunk reads in flight: ``fetch_window`` of ``load()``, else
  $DEEPLAKE_LOADER_FETCH_WINDOW, else Little's law on what is observed: a chunk read takes
  ``t_fetch`` (the link's latency plus the chunk's size over its bandwidth: a low quantile of
  recent reads, i.e. ones that did not queue behind others at a saturated server), the consumer
  spends ``t_use`` on a chunk between two takes (median of recent ones, waits excluded, the
  first three left out: they come while the queues downstream fill), so
  ``ceil(t_fetch / t_use) + 1`` reads in flight keep it fed. Before anything is measured: 2 on a
  local disk; on a remote store as many as the byte budget holds (at most ``MAX_THREADS``): the
  consumer's pace is not known yet, a fast one (``tobytes``, a GPU step) would starve for the
  ~0.5 s the first timings take over a far link, and the budget already bounds what reading
  ahead costs. While the consumer waits for a remote read (the first of an epoch), only
  ``BESIDE_URGENT`` others go out with it: the rest would compete with it for the server and the
  link, and the first batch would come later. When the byte budget holds fewer chunks than the
  requests wanted, each chunk is read as several range requests so they add up (at most 8 per
  chunk and 32 in all);
* bytes: chunks read or being read and not yet taken. Without shuffle the budget is
  ``WINDOW_MB``; with shuffle it is an eighth of ``buffer_size``, taken off the reservoir's share
  (``split_budget``), so shuffle buffer + window stay within the buffer size the user gave.

Sizes come from the storage (a remote folder's listing: a LIST, which may take as long as the
retry policy allows) and are learnt by a thread of their own, in plan order, never under the
window's lock: a slow LIST holds back the admission of the chunks whose size it would give, not
``take()`` of chunks already read nor the reads in flight. The chunk the consumer takes next is
admitted at once, its size estimated (the sizes seen so far) until its read says.

The first chunk not yet read is always admitted, whatever its size. On a remote store a read the
consumer already waits for (the first of an epoch, or any when the window fell behind) is split
into 8 parallel range requests; the others are read whole unless the byte budget is what limits
the window (above): every request costs CPU on both ends and is billed by S3, and AWS gives 8-16 MB,
a chunk's size, as the typical range. ``take(name)`` waits for the next chunk of the plan and
returns it; a read error is raised there, naming the rows the chunk would have served. The
window changes when chunks arrive, never which chunks the steps use or in what order: the rows an
epoch yields, and their order, are the same for any window. A step the caller skips (a resumed
epoch) only releases its chunk.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque

from ..errors import RemoteReadError
from ..limits import check_window

WINDOW_MB = 256
MAX_THREADS = 32
START_LOCAL, START_REMOTE = 2, MAX_THREADS  # chunk reads in flight before any has been timed (and
# within the byte budget)
BESIDE_URGENT = 7  # other reads a remote store starts while the consumer waits for one
URGENT_PARTS = 8  # range requests of a chunk the consumer already waits for
MAX_PARTS = 8
MAX_REQUESTS = 32  # requests in flight when chunks are split (each costs CPU on both ends)
WARM_TAKES = 3  # the first takes come while the queues downstream fill: too fast to tell the pace
_KEEP = 16  # recent timings the sizing looks at
_ENV = "DEEPLAKE_LOADER_FETCH_WINDOW"


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
    __slots__ = ("name", "nbytes", "takes", "done", "chunk", "error", "parts", "urgent", "holds")

    def __init__(self, name, nbytes, parts, urgent, holds):
        self.name, self.nbytes, self.takes, self.parts, self.urgent = name, nbytes, 1, parts, urgent
        self.holds = holds  # an urgent remote read: others wait for room until it is done
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
        self._sizes: dict = {}  # chunk name -> bytes (None: the storage does not say), learnt by _learn_sizes
        self.sizes_known = threading.Event()  # set once every size of the plan is learnt (tests, benches)
        self._fetch_times: deque = deque(maxlen=_KEEP)  # seconds of whole chunk reads (not memory hits)
        self._use_times: deque = deque(maxlen=_KEEP)  # consumer seconds per chunk, waits excluded
        self._returned_at = None  # when take() last returned
        self._takes = 0
        self._urgent_reads = 0  # remote reads in flight that the consumer waits for
        self._closed = False
        self.peak_in_flight = self.peak_bytes = 0  # for tests and benches
        self._sizer = None
        if self.plan:
            self._sizer = threading.Thread(target=self._learn_sizes, daemon=True, name="deeplake_loader-window-sizes")
            self._sizer.start()
        else:
            self.sizes_known.set()
        self._fill()

    # ------------------------------------------------------------------------------- sizing
    def _learn_sizes(self) -> None:
        """The sizer thread: each chunk's size from the storage, in plan order (the storage may
        LIST a folder, over the network), admitting more reads after each (outside the lock)."""
        try:
            for name in dict.fromkeys(self.plan):
                if self._closed:
                    return
                try:
                    size = self.reader.chunk_size(name)
                except Exception:  # noqa: BLE001 - the read of that chunk reports what is wrong
                    size = None
                with self._cv:
                    self._sizes[name] = size
                    entry = self._entries.get(name)
                    if size is not None and entry is not None and not entry.done:  # admitted on an estimate
                        self._bytes += int(size) - entry.nbytes
                        entry.nbytes = int(size)
                self._fill()
        finally:
            self.sizes_known.set()

    def _estimate(self) -> int:
        """Bytes of a chunk whose size is not known (lock held): the mean of those read so far,
        else the tensor's max_chunk_size."""
        seen = self._seen_sizes
        return sum(seen) // len(seen) if seen else int(self.reader.meta.get("max_chunk_size") or (16 << 20))

    def limit(self) -> int:
        """Chunk reads to keep in flight now."""
        return self.sizing()[0]

    def sizing(self):
        """(chunk reads to keep in flight, range requests per chunk or None for the storage's own
        choice). Requests wanted = ceil(t_fetch / t_use) + 1; when the byte budget holds fewer
        chunks than that, each chunk is split so that the requests still add up."""
        if self.fixed is not None:
            return self.fixed, None
        with self._cv:
            fetch, use = list(self._fetch_times), sorted(self._use_times)
        if not fetch or len(use) < 2:
            return (START_LOCAL if self.reader.storage.stats is None else START_REMOTE), None
        t_use = max(use[len(use) // 2], 1e-4)
        t_fetch = sorted(fetch)[len(fetch) // 4]  # one connection's time for a whole chunk
        wanted = math.ceil(t_fetch / t_use) + 1
        seen = self._seen_sizes
        fit = max(1, self.max_bytes // max(1, sum(seen) // len(seen))) if seen else MAX_THREADS
        chunks = max(1, min(MAX_THREADS, wanted, fit))
        parts = min(MAX_PARTS, math.ceil(wanted / chunks), MAX_REQUESTS // chunks)
        if self.reader.storage.stats is None or parts <= 1:
            return chunks, None
        return chunks, parts

    # ------------------------------------------------------------------------- admission
    def _fill(self) -> None:
        """Submit the next reads the count and byte budgets allow. Called with or without the lock
        held by this thread (it takes it); never waits for the storage: a chunk whose size is not
        learnt yet stops the admissions (the sizer thread calls again), unless it is the one the
        consumer takes next."""
        with self._cv:
            if self._closed:
                return
            limit, parts = self.sizing()
            while self._next_submit < len(self.plan):
                name = self.plan[self._next_submit]
                entry = self._entries.get(name)
                if entry is not None:  # already in the window: one more take of it
                    entry.takes += 1
                    self._next_submit += 1
                    continue
                urgent = self._next_submit <= self._next_take  # take() waits for it, or will next
                if self.reader.is_cached(name):
                    size = 0
                elif name in self._sizes:
                    size = self._sizes[name]
                    size = self._estimate() if size is None else int(size)
                elif urgent:
                    size = self._estimate()  # corrected when the read is done
                else:
                    break  # the sizer thread has not learnt it yet
                busy = self._bytes > 0 or self._in_flight > 0
                wanted_now = self._next_submit < self._next_take  # the chunk take() waits for
                room = min(limit, 1 + BESIDE_URGENT) if self._urgent_reads else limit  # (remote stores only)
                if busy and not wanted_now and (self._in_flight >= room or self._bytes + size > self.max_bytes):
                    break
                holds = urgent and size > 0 and self._automatic_remote()
                entry = _Entry(name, size, URGENT_PARTS if holds else parts, urgent, holds)
                self._urgent_reads += holds
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

    def _automatic_remote(self) -> bool:
        """A remote store with no fixed window: the urgent read is split and goes out nearly alone."""
        return self.fixed is None and self.reader.storage.stats is not None

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
            t0 = time.monotonic()
            try:
                chunk, error = self.reader.load_chunk(entry.name, parts=entry.parts), None
            except BaseException as e:  # noqa: BLE001 - raised by take()
                chunk, error = None, e
            with self._cv:
                if chunk is not None and entry.nbytes and not entry.urgent:  # a read, not a
                    # memory-cache hit nor a split-up urgent one: the time one connection would take
                    self._fetch_times.append((time.monotonic() - t0) * (entry.parts or 1))
                entry.chunk, entry.error, entry.done = chunk, error, True
                self._urgent_reads -= entry.holds
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
        called = time.monotonic()
        with self._cv:
            self._takes += 1
            if self._returned_at is not None and self._takes > WARM_TAKES:
                self._use_times.append(called - self._returned_at)
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
        self._returned_at = time.monotonic()
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
        deadline = time.monotonic() + 5  # a read or LIST in progress ends within its retry policy's
        threads = self._threads + ([self._sizer] if self._sizer is not None else [])  # bound; idle
        for t in threads:                                                            # threads end now
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
