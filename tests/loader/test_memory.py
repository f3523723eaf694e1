"""Bounded memory: the loader's peak resident memory (measured as a real peak, tests/common/memory.py)
does not grow with epochs or with the number of distinct image sizes, and the buffer pool's own
accounting stays under its documented bound."""

import numpy as np
import pytest

from tests.common.memory import peak_growth

from .conftest import image_for, jpeg_dataset


def test_memory_stays_bounded_over_epochs(tmp_path):
    """The peak RSS of epochs 3 to 10 of a shuffled loader is about the RSS after epoch 2."""
    rng = np.random.default_rng(0)
    path = jpeg_dataset(tmp_path / "big", [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(600)],
                        [i % 10 for i in range(600)])
    out = peak_growth(f"""
        import deeplake_loader as dl
        loader = dl.load({path!r}).dataloader().batch(32).shuffle(buffer_size=4).pytorch()
        for _ in range(2):
            for b in loader:
                pass
        del b
        """, """
        for _ in range(8):
            for b in loader:
                pass
        """)
    assert out["peak_growth_mib"] < 40, out


N_SIZES = 300


@pytest.fixture(scope="module")
def many_sizes_ds(tmp_path_factory):
    """300 JPEGs, each of its own size (about 0.25 to 0.6 MB decoded; 125 MiB in all)."""
    return jpeg_dataset(tmp_path_factory.mktemp("sizes") / "ds", [image_for(i, 200 + i, 400) for i in range(N_SIZES)])


# setup code: reset the worker processes' peak marks too (they map the shared blocks)
WORKER_PEAKS = """
        pids = [p.pid for p in loader._pipeline._workers.procs] if loader._pipeline._workers else []
        for pid in pids:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        workers_start = [status("VmRSS", pid) for pid in pids]
"""


@pytest.mark.parametrize("workers", [0, 2])
def test_pool_stays_bounded_over_many_image_sizes(many_sizes_ds, workers):
    """batch(1) over images of 300 distinct sizes: every size needs its own block; the pool must not
    keep one per size (issue 10: 399 blocks, 148 MiB). Checked on the real peak RSS of the epoch
    and on the pool's own accounting. With workers the blocks are shared memory, which the workers
    must let go of too: their peaks are measured as well."""
    transform = ".transform({'images': keep})" if workers else ""
    out = peak_growth(f"""
        import deeplake_loader as dl
        from tests.common.loader import keep
        loader = (dl.load({many_sizes_ds!r}).dataloader(){transform}.batch(1)
                  .numpy(num_workers={workers}, persistent_workers=True))
        it = iter(loader)
        next(it)
        """ + WORKER_PEAKS, """
        n = 1
        for b in it:
            n += 1
        del b
        RESULT.update(n=n, workers=[status("VmHWM", pid) - s for pid, s in zip(pids, workers_start)],
                      **loader._pipeline.pool.stats())
        loader.close()
        """)
    stats = out["result"]
    assert stats["n"] == N_SIZES and len(stats["workers"]) == workers
    decoded_mib = sum((200 + i) * 400 * 3 for i in range(N_SIZES)) / 2**20
    bound_mib = min(48, decoded_mib / 3)
    assert out["peak_growth_mib"] < bound_mib, out
    assert all(peak < bound_mib / 2 for peak in stats["workers"]), out
    largest = (200 + N_SIZES - 1) * 400 * 3
    assert stats["free_bytes"] <= stats["max_free_bytes"], stats
    assert stats["max_free_bytes"] <= 16 * largest, stats
    assert stats["free_blocks"] <= stats["max_free_blocks"], stats
