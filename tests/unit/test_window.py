"""pipeline/window.py: chunks read ahead on several threads, within the count and byte budgets,
handed over in plan order whatever order the reads finish in; errors name the rows; skipped steps
release their chunks; closing ends the threads."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from deeplake_loader.errors import RemoteReadError
from deeplake_loader.pipeline.window import BESIDE_URGENT, MAX_THREADS, URGENT_PARTS, ChunkWindow, split_budget
from deeplake_loader.storage.linkstats import LinkStats
from deeplake_loader.storage.local import LocalProvider
from tests.common.remote import row_image, write_row_dataset


class SlowDisk(LocalProvider):
    """A local dataset whose chunk reads take a random while (so they finish out of order), with
    the reads in flight counted; reads of ``failing`` keys fail as a dropped network would."""

    def __init__(self, root, seed=0, failing=()):
        super().__init__(root)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.now = self.peak = 0
        self.failing = set(failing)

    def read_blob(self, key, size=None, parts=None):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            delay = self.rng.uniform(0, 0.02)
        try:
            time.sleep(delay)
            if key in self.failing:
                raise RemoteReadError(f"reading '{self.url(key)}' failed after 6 attempts", url=self.url(key),
                                      attempts=6)
            return super().read_blob(key, size, parts)
        finally:
            with self.lock:
                self.now -= 1


class FarDisk(SlowDisk):
    """SlowDisk posing as a remote store (it has link stats, as s3:// does), whose reads of a key
    wait until that key is let through (``open``), so nothing is timed; the range requests asked of
    each key are kept."""

    stats = LinkStats()

    def __init__(self, root):
        super().__init__(root)
        self.opened = set()  # keys let through; None: all
        self.cv = threading.Condition()
        self.parts = {}

    def open(self, key=None):
        with self.cv:
            self.opened.add(key)
            self.cv.notify_all()

    def read_blob(self, key, size=None, parts=None):
        with self.cv:
            self.parts[key] = parts
            self.cv.notify_all()
            assert self.cv.wait_for(lambda: key in self.opened or None in self.opened, timeout=10)
        return super().read_blob(key, size, parts)

    def reads_started(self, window, n):
        """The reads started once ``n`` have (waiting at most 10 s, a hang guard) and the window has
        learnt every size: no more can start while none is let through, since the window's
        admissions are then settled (each admitted chunk is read once, and no read finishes)."""
        with self.cv:
            self.cv.wait_for(lambda: len(self.parts) >= n, timeout=10)
        assert window.sizes_known.wait(10)
        with window._cv:
            admitted = window._next_submit
        with self.cv:
            self.cv.wait_for(lambda: len(self.parts) >= admitted, timeout=10)
            return len(self.parts)


@pytest.fixture(scope="module")
def rows_path(tmp_path_factory):
    return write_row_dataset(tmp_path_factory.mktemp("window") / "ds", 200, max_chunk_size=3000)


def _reader(path, storage):
    import deeplake_loader as dl

    ds = dl.load(path, read_only=True, memory_cache_size=0)
    ds.storage = storage
    ds._shared["readers"].clear()
    return ds._reader("images")


def _names(reader):
    return [reader.enc.name(c) for c in reader.enc.table[:, 0]]


@pytest.mark.parametrize("window", [1, 3, 8])
def test_plan_order_within_budgets(rows_path, window):
    storage = SlowDisk(rows_path, seed=window)
    reader = _reader(rows_path, storage)
    names = _names(reader)
    plan = names + names[::-1]  # every chunk twice
    assert len(names) > 10
    before = threading.active_count()
    largest = max(reader.chunk_size(n) for n in names)
    with ChunkWindow(reader, plan, max_bytes=4 * largest, window=window) as w:
        for name in plan:
            chunk = w.take(name)
            assert chunk.key.endswith(name)
            assert w._bytes <= 4 * largest
        assert w.peak_in_flight <= window and storage.peak <= window
        assert w.peak_bytes <= 4 * largest
        if window > 1:
            assert storage.peak > 1
    assert threading.active_count() == before


def test_byte_budget_smaller_than_a_chunk_still_moves(rows_path):
    storage = SlowDisk(rows_path)
    reader = _reader(rows_path, storage)
    names = _names(reader)
    with ChunkWindow(reader, names, max_bytes=1, window=8) as w:
        for name in names:
            assert w.take(name).key.endswith(name)
        assert storage.peak == 1  # one chunk at a time: the budget holds no more


def test_rows_of_the_samples_come_out_right(rows_path):
    """The loader over a slow, out-of-order disk: every batch holds the rows its index names."""
    import deeplake_loader as dl

    ds = dl.load(rows_path, read_only=True, fetch_window=6)
    ds.storage = SlowDisk(rows_path, seed=4)
    ds._shared["readers"].clear()
    seen = []
    for shuffle in (False, True):
        loader = ds.dataloader().batch(16)
        loader = loader.shuffle(buffer_size=1) if shuffle else loader
        with loader.pytorch() as it:
            for batch in it:
                rows = batch["index"].reshape(-1).tolist()
                for r, img in zip(rows, batch["images"].numpy()):
                    np.testing.assert_array_equal(img, row_image(r))
                seen.append(rows)
    flat = [r for rows in seen for r in rows]
    assert flat[:200] == list(range(200)) and sorted(flat[200:]) == list(range(200))


@pytest.mark.parametrize("budget_chunks", [None, 5, 11])
def test_remote_window_opens_to_the_byte_budget_once_the_first_chunk_is_in(rows_path, budget_chunks):
    """Before anything is timed a remote store reads ahead as far as the byte budget allows (a fast
    consumer would otherwise starve while the first timings come in), except while the consumer
    waits for a read: then only BESIDE_URGENT others go out with it, so that they do not slow it
    down. Only the read the consumer waits for is split into range requests."""
    storage = FarDisk(rows_path)
    reader = _reader(rows_path, storage)
    names = _names(reader)
    keys = [reader.vs.chunk_key(reader.key, n) for n in names]
    sizes = [reader.chunk_size(n) for n in names]
    budget = 10**9 if budget_chunks is None else sum(sizes[:budget_chunks])

    def admitted(start, cap):  # reads the byte budget admits from chunk ``start`` on, in plan order
        n, total = 0, 0
        while start + n < len(sizes) and n < cap and total + sizes[start + n] <= budget:
            total += sizes[start + n]
            n += 1
        return n

    assert len(names) > 1 + BESIDE_URGENT + 4
    with ChunkWindow(reader, names, max_bytes=budget) as w:
        at_start = admitted(0, 1 + BESIDE_URGENT)
        assert storage.reads_started(w, at_start) == at_start
        assert storage.parts[keys[0]] == URGENT_PARTS
        assert all(storage.parts[k] is None for k in keys[1:at_start])
        storage.open(keys[0])
        assert w.take(names[0]).key.endswith(names[0])
        then = admitted(1, MAX_THREADS)
        if budget_chunks is None:
            assert then > 1 + BESIDE_URGENT  # the window does widen past its start
        assert storage.reads_started(w, 1 + then) == 1 + then
        assert all(storage.parts[k] is None for k in keys[1:1 + then])
        assert w.peak_bytes <= budget
        storage.open()
        for name in names[1:]:
            assert w.take(name).key.endswith(name)


class GatedListing(LocalProvider):
    """A local dataset posing as a remote store (it has link stats) on which learning the size of
    the ``slow`` chunks needs a LIST that hangs until the test opens ``gate``; ``listing`` is set
    when such a LIST starts; finished reads are kept in order."""

    stats = LinkStats()

    def __init__(self, root, slow):
        super().__init__(root)
        self.slow = set(slow)
        self.gate, self.listing = threading.Event(), threading.Event()
        self.cv = threading.Condition()
        self.read = []

    def size_of(self, key):
        if key in self.slow:
            self.listing.set()
            self.gate.wait(60)
        return super().size_of(key)

    def read_blob(self, key, size=None, parts=None):
        data = super().read_blob(key, size, parts)
        with self.cv:
            self.read.append(key)
            self.cv.notify_all()
        return data


def test_a_slow_listing_holds_back_neither_take_nor_the_other_reads(rows_path):
    """The size of the 5th chunk needs a LIST that hangs until the test opens its gate (as a LIST
    retried for minutes would): meanwhile the window is made, the chunks before it are read on the
    window's threads and taken, and so is the 5th (taken next: admitted on an estimated size, its
    read does not wait for the LIST); once the gate opens the rest arrives in plan order."""
    names = _names(_reader(rows_path, LocalProvider(rows_path)))
    probe = _reader(rows_path, LocalProvider(rows_path))
    keys = [probe.vs.chunk_key(probe.key, n) for n in names]
    storage = GatedListing(rows_path, slow={keys[4]})
    reader = _reader(rows_path, storage)
    took, errors = [], []
    early = threading.Event()  # the first five chunks were taken

    def consume():
        try:
            with ChunkWindow(reader, names, max_bytes=10**9) as w:
                for name in names[:5]:
                    took.append(w.take(name).key)
                early.set()
                storage.gate.wait(60)
                for name in names[5:]:
                    took.append(w.take(name).key)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        assert storage.listing.wait(10), "the slow LIST never started"
        assert early.wait(10), "take() waited for a LIST that only later chunks need"
        with storage.cv:
            assert set(keys[:5]) <= set(storage.read)  # read while the LIST hangs
        assert not storage.gate.is_set()
    finally:
        storage.gate.set()
        consumer.join(60)
    assert not consumer.is_alive() and not errors, errors
    assert took == keys


def test_a_failed_read_names_its_rows_and_skipped_steps_are_released(rows_path):
    import deeplake_loader as dl

    ds = dl.load(rows_path, read_only=True)
    reader = ds._reader("images")
    names = _names(reader)
    bad = reader.vs.chunk_key(reader.key, names[3])
    storage = SlowDisk(rows_path, failing={bad})
    reader = _reader(rows_path, storage)
    with ChunkWindow(reader, names, max_bytes=10**9, window=4) as w:
        w.take(names[0])
        w.take(names[2])  # names[1] skipped (a resumed epoch): released, not waited for
        with pytest.raises(RemoteReadError) as info:
            w.take(names[3], rows=np.array([40, 41, 42]))
        assert w.take(names[4]).key.endswith(names[4])
    err = info.value
    assert err.tensor == "images" and err.chunk == bad and list(err.rows) == [40, 41, 42]
    assert "rows 40, 41, 42" in str(err)


def test_split_budget():
    assert split_budget(8_000_000, True) == (7_000_000, 1_000_000)
    reservoir, window = split_budget(8_000_000, False)
    assert reservoir == 8_000_000 and window > 0


def test_fetch_window_argument_and_environment(rows_path, monkeypatch):
    import deeplake_loader as dl

    with pytest.raises(ValueError, match="fetch_window"):
        dl.load(rows_path, fetch_window=0)
    reader = _reader(rows_path, SlowDisk(rows_path))
    monkeypatch.setenv("DEEPLAKE_LOADER_FETCH_WINDOW", "5")
    with ChunkWindow(reader, [], max_bytes=1) as w:
        assert w.limit() == 5
    with ChunkWindow(reader, [], max_bytes=1, window=2) as w:
        assert w.limit() == 2
    monkeypatch.setenv("DEEPLAKE_LOADER_FETCH_WINDOW", "many")
    with pytest.raises(ValueError, match="DEEPLAKE_LOADER_FETCH_WINDOW"):
        ChunkWindow(reader, [], max_bytes=1)
