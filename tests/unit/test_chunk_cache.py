"""storage/cache.py (the on-disk chunk cache) and format/chunk_lru.py (the memory cache): byte
bounds, LRU order, damaged files, and a writer killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deeplake_loader.format.chunk_lru import ChunkLRU
from deeplake_loader.storage.cache import _TRAILER, ChunkCache

URL = "s3://bucket/dataset"


def payload(k: int, n: int) -> bytes:
    return np.random.default_rng(k).integers(0, 256, n, dtype=np.uint8).tobytes()


def test_put_get_and_keys(tmp_path):
    cache = ChunkCache(URL, 10_000_000, str(tmp_path))
    cache.put("images/chunks/a", "etag1", payload(1, 1000))
    assert cache.get("images/chunks/a", "etag1") == payload(1, 1000)
    assert cache.get("images/chunks/a", "etag2") is None  # the object changed: another entry
    assert cache.get("images/chunks/b", "etag1") is None
    assert cache.get_range("images/chunks/a", "etag1", 10, 20) == payload(1, 1000)[10:20]
    other = ChunkCache("s3://bucket/other", 10_000_000, str(tmp_path))
    assert other.get("images/chunks/a", "etag1") is None  # keyed by dataset URL too
    assert cache.hits == 1 and cache.misses == 2


class Clock:
    """An explicit clock for the cache's LRU times: every reading is one second after the last."""

    def __init__(self):
        self.now = 1_000_000_000.0

    def __call__(self):
        self.now += 1.0
        return self.now


def test_bounded_by_bytes_least_recently_used_out(tmp_path):
    cache = ChunkCache(URL, 1_000_000, str(tmp_path), clock=Clock())
    cache.put("c/0", "t", payload(0, 150_000))
    for k in range(1, 20):
        cache.put(f"c/{k}", "t", payload(k, 150_000))
        assert cache.get("c/0", "t") == payload(0, 150_000)  # used all along: stays
        assert cache.size() <= 1_000_000  # at every moment, not only after an eviction
    assert cache.get("c/1", "t") is None  # least recently used: gone
    assert cache.get("c/19", "t") == payload(19, 150_000)
    assert cache.put("big", "t", payload(1, 2_000_000)) is False  # larger than the whole cache: not kept
    assert cache.get("big", "t") is None


def test_a_damaged_file_is_a_miss_and_is_removed(tmp_path):
    cache = ChunkCache(URL, 10_000_000, str(tmp_path))
    cache.put("c/1", "t", payload(1, 5000))
    path = cache._file("c/1", "t")
    with open(path, "r+b") as f:  # e.g. a power cut after the rename: the tail is missing
        f.truncate(3000)
    assert cache.get("c/1", "t") is None and not os.path.exists(path)
    cache.put("c/2", "t", payload(2, 5000))
    with open(cache._file("c/2", "t"), "r+b") as f:  # a wrong trailer
        f.seek(-16, 2)
        f.write(b"X" * 16)
    assert cache.get("c/2", "t") is None
    # (a changed byte under a right trailer: tests/unit/test_cache_security.py)


ENTRY = 48_000_000 + _TRAILER.size

WRITER = """
import sys
import numpy as np
from deeplake_loader.storage.cache import ChunkCache
cache = ChunkCache(sys.argv[1], 10**12, sys.argv[2])
for k in range(10**6):
    cache.put(f"images/chunks/{k % 8}", "t", np.random.default_rng(k % 8).integers(0, 256, 48_000_000, dtype=np.uint8).tobytes())
"""


def test_a_writer_killed_mid_write_leaves_no_chunk_that_reads_wrong(tmp_path):
    """SIGKILL a process while it writes a chunk: what it left is a temporary file, never a partial
    chunk under a real name; every entry reads as the full chunk or as a miss; the next eviction
    removes the dead writer's temporary file."""
    root = str(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    caught = False
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, URL, root], env=env)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                tmp = [p for p in Path(root).rglob("*") if ".tmp-" in p.name and p.stat().st_size > 1_000_000]
                if tmp:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.001)
        finally:
            proc.kill()
            proc.wait()
        left = [p for p in Path(root).rglob("*") if ".tmp-" in p.name]
        if left and any(0 < p.stat().st_size < ENTRY for p in left):
            caught = True
            break
    assert caught, "the kill never landed mid-write"
    finals = [p for p in Path(root).rglob("*") if p.is_file() and len(p.parent.name) == 2 and ".tmp-" not in p.name]
    assert all(p.stat().st_size == ENTRY for p in finals)  # every real name holds a whole chunk
    cache = ChunkCache(URL, 10**12, root, tmp_max_age=3600)
    for k in range(8):
        got = cache.get(f"images/chunks/{k}", "t")
        assert got is None or got == payload(k, 48_000_000), k
    ChunkCache(URL, 10**12, root, tmp_max_age=0)  # opening evicts: dead writers' files go
    assert not [p for p in Path(root).rglob("*") if ".tmp-" in p.name]


def _chunk(n):
    """A real one-sample chunk of n payload bytes."""
    from deeplake_loader.format.chunk import Chunk, serialize

    return Chunk.from_bytes(serialize([[n]], [n], b"x" * n))


def test_memory_cache_bounded_by_bytes():
    lru = ChunkLRU(0.01)  # 10 kB
    for k in range(10):
        lru.put(("t", k), _chunk(3000))
        assert lru.nbytes <= 10_000
        lru.get(("t", 0))  # kept warm
    assert ("t", 0) in lru and ("t", 1) not in lru and ("t", 9) in lru
    lru.put(("t", "big"), _chunk(20_000))
    assert ("t", "big") not in lru
    lru.clear("t")
    assert lru.nbytes == 0
    with pytest.raises(ValueError, match="memory_cache_size"):
        ChunkLRU(-1)
