"""pipeline/memory.py BufferPool: reuse by exact size, a bound on what it keeps (least recently
returned dropped first), and leased memory never freed under a live array."""

import gc

import numpy as np
import pytest

from deeplake_loader.pipeline.memory import POOL_MB_ENV, BufferPool


@pytest.fixture(params=[False, True], ids=["private", "shared"])
def shared(request):
    return request.param


def test_a_returned_block_is_reused_for_the_same_size(shared):
    pool = BufferPool(shared=shared, slots=4)
    a = pool.array((10, 10), np.uint8)
    block = pool.block_of(a) if shared else None
    addr = a.__array_interface__["data"][0]
    del a
    b = pool.array((100,), np.uint8)  # same bytes, other shape
    assert b.__array_interface__["data"][0] == addr
    if shared:
        assert pool.block_of(b) is block and block.fd >= 0
    assert pool.stats()["blocks"] == 1
    pool.close()


def test_the_pool_keeps_at_most_slots_free_blocks_least_recently_returned_dropped(shared):
    pool = BufferPool(shared=shared, slots=3)
    arrays = [pool.array((1000 + i,), np.uint8) for i in range(6)]  # six sizes
    ids = [pool.block_of(a).id for a in arrays] if shared else None
    while arrays:  # returned in order of size
        arrays.pop(0)
    stats = pool.stats()
    assert stats["free_blocks"] == 3 and stats["blocks"] == 3 and stats["leased_bytes"] == 0
    assert stats["free_bytes"] == 1003 + 1004 + 1005  # the three returned last
    if shared:
        assert [pool.holds(i) for i in ids] == [False] * 3 + [True] * 3
    pool.close()


def test_the_byte_bound_follows_the_largest_block_and_the_environment_can_fix_it(monkeypatch):
    pool = BufferPool(slots=4)
    a = pool.array((5000,), np.uint8)
    assert pool.max_free_bytes == 4 * 5000
    del a
    monkeypatch.setenv(POOL_MB_ENV, "0")
    pool0 = BufferPool(slots=4)
    b = pool0.array((5000,), np.uint8)
    del b
    assert pool0.stats()["free_bytes"] == 0 and pool0.stats()["blocks"] == 0  # nothing kept
    monkeypatch.setenv(POOL_MB_ENV, "lots")
    with pytest.raises(ValueError, match=POOL_MB_ENV):
        BufferPool()
    pool.close()
    pool0.close()


def test_leased_memory_outlives_eviction_and_close(shared):
    pool = BufferPool(shared=shared, slots=1)
    kept = pool.array((256, 256), np.uint8)
    kept[:] = 7
    for i in range(5):  # churn: other sizes come and go, blocks are dropped
        pool.array((100 + i,), np.uint8)[:] = 1
    pool.close()
    gc.collect()
    assert int(kept.sum()) == 7 * 256 * 256
    kept[:] = 9  # still mapped and writable
    assert int(kept.sum()) == 9 * 256 * 256
