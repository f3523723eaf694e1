"""The pipeline: shuffling, seeds, fused crops, workers, errors, cleanup and memory."""

import glob
import os
import time

import numpy as np
import pytest

import deeplake_loader as dl
from deeplake_loader.errors import TransformError, WorkerError
from deeplake_loader.transforms import RandomResizedCrop

from tests.common.loader import Compose

from .conftest import N, image_for, rows_of


def epoch_rows(loader):
    return [r for b in loader for r in rows_of(b)]


def test_shuffle_is_a_permutation_each_epoch_and_epochs_differ(loader_ds):
    loader = loader_ds.dataloader().batch(7).shuffle(buffer_size=1).pytorch(tensors=["images", "labels"])
    seen = []
    for _ in range(3):
        rows = []
        for b in loader:
            rows += rows_of(b)
            for img, row in zip(b["images"].numpy(), rows_of(b)):  # every image is its row's image
                assert np.array_equal(img, image_for(row))
        assert sorted(rows) == list(range(N))
        seen.append(rows)
    assert seen[0] != list(range(N)) and seen[0] != seen[1] != seen[2]


def test_seed_makes_shuffle_and_sampling_reproducible(loader_ds):
    def run():
        loader = (loader_ds.dataloader().sample_by(np.arange(N) + 1.0, size=80).shuffle().batch(16)
                  .pytorch(tensors=["labels"]))
        return [epoch_rows(loader) for _ in range(2)]

    dl.random.seed(42)
    a = run()
    dl.random.seed(42)
    b = run()
    dl.random.seed(43)
    c = run()
    dl.random.seed(None)
    assert a == b and a != c and a[0] != a[1]


def test_small_buffer_still_yields_every_row(loader_ds):
    """A budget far below one chunk: the reservoir passes rows through, each exactly once."""
    rows = epoch_rows(loader_ds.dataloader().batch(5).shuffle(buffer_size=1).pytorch(tensors=["labels"]))
    assert sorted(rows) == list(range(N))


def test_fused_random_resized_crop_is_pushed_into_decode(jpeg_ds):
    loader = jpeg_ds.dataloader().transform({"images": RandomResizedCrop(16), "labels": None}).batch(5).pytorch()
    pipe = loader._get_pipeline()
    assert pipe.columns["images"].crop is not None and not pipe.assemble.runs_user_code  # no Python per sample
    batches = list(loader)
    assert [tuple(b["images"].shape) for b in batches] == [(5, 16, 16, 3)] * 4
    # whole-image crop (scale and ratio pinned to the full frame) of a 48x60 image to 48x60: the pixels
    full = jpeg_ds.dataloader().transform({"images": RandomResizedCrop((48, 60), scale=(1, 1), ratio=(1.25, 1.25))})
    b = next(iter(full.batch(2).numpy(tensors=None)))
    ref = jpeg_ds.images[1].numpy()
    assert np.abs(b[1]["images"].astype(int) - ref.astype(int)).max() <= 2


def test_fused_crop_followed_by_other_transforms(jpeg_ds):
    chain = Compose([RandomResizedCrop(8), lambda a: a.mean(axis=2)])
    loader = jpeg_ds.dataloader().transform({"images": chain}).batch(4).numpy()
    assert loader._get_pipeline().columns["images"].crop is chain.transforms[0]
    batch = next(iter(loader))
    assert [s["images"].shape for s in batch] == [(8, 8)] * 4


def add_hundred(sample):
    return {"v": sample["vec"].astype(np.int64) + 100, "row_label": int(sample["labels"][0])}


def fail_on_row_7(x):
    if int(x[0]) == 7:
        raise ZeroDivisionError("boom on purpose")
    return x


def kill_self_on_row_3(x):
    if int(x[0]) == 3:
        os.kill(os.getpid(), 9)
    return x


def shm_files():
    return glob.glob(f"/dev/shm/deeplake_loader_{os.getpid()}_*")


def child_pids():
    import psutil

    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_workers_give_the_same_batches_as_the_main_process(loader_ds):
    ref = list(loader_ds.dataloader().transform(add_hundred).batch(8).numpy(num_workers=0))
    with loader_ds.dataloader().transform(add_hundred).batch(8).numpy(num_workers=2) as loader:
        got = list(loader)
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert np.array_equal(x["v"], y["v"]) and x["row_label"] == y["row_label"]
    assert not shm_files()


def test_worker_images_travel_through_shared_memory(loader_ds):
    loader = (loader_ds.dataloader().transform({"images": np.flipud, "labels": None, "index": None}).batch(10)
              .pytorch(num_workers=2))
    for b in loader:
        for img, row in zip(b["images"].numpy(), rows_of(b)):
            assert np.array_equal(img, np.flipud(image_for(row)))
    assert loader._pipeline.pool.shared
    loader.close()
    assert not shm_files()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_transform_that_raises_names_tensor_row_and_traceback(loader_ds, workers):
    loader = loader_ds.dataloader().transform({"vec": fail_on_row_7}).batch(4).pytorch(num_workers=workers)
    before = child_pids()
    t0 = time.monotonic()
    with pytest.raises(TransformError) as e:
        for _ in loader:
            pass
    assert time.monotonic() - t0 < 30
    msg = str(e.value)
    assert "'vec'" in msg and "sample index 7" in msg and "ZeroDivisionError" in msg and "boom on purpose" in msg
    assert "fail_on_row_7" in msg  # the original traceback
    loader.close()
    assert child_pids() <= before and not shm_files()


def test_a_killed_worker_is_reported_not_waited_on(loader_ds):
    loader = loader_ds.dataloader().transform({"vec": kill_self_on_row_3}).batch(2).pytorch(num_workers=2)
    with pytest.raises(WorkerError, match="SIGKILL"):
        for _ in loader:
            pass
    loader.close()
    assert not shm_files()


def test_persistent_workers_are_kept_and_close_stops_them(loader_ds):
    loader = loader_ds.dataloader().transform(add_hundred).batch(25).numpy(num_workers=2, persistent_workers=True)
    list(loader)
    pids = {p.pid for p in loader._pipeline._workers.procs}
    list(loader)
    assert {p.pid for p in loader._pipeline._workers.procs} == pids
    loader.close()
    import psutil

    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    assert not shm_files()


def test_early_break_and_garbage_collection_clean_up(loader_ds):
    import gc

    loader = loader_ds.dataloader().transform(add_hundred).batch(2).numpy(num_workers=2)
    for _ in loader:
        break
    del loader
    gc.collect()
    time.sleep(0.5)
    assert not shm_files()



def test_without_shared_memory_workers_get_batches_pickled(loader_ds, monkeypatch):
    """Where memfd does not exist (not Linux) the pool's blocks are private and workers get the
    decoded columns pickled: the same batches."""
    from deeplake_loader.pipeline import memory, workers

    monkeypatch.setattr(memory, "SHARED_MEMORY", False)
    monkeypatch.setattr(workers, "SHARED_MEMORY", False)
    loader = (loader_ds.dataloader().transform({"images": np.flipud, "labels": None, "index": None}).batch(10)
              .pytorch(num_workers=2))
    with loader:
        rows = []
        for b in loader:
            for img, row in zip(b["images"].numpy(), rows_of(b)):
                assert np.array_equal(img, np.flipud(image_for(row)))
            rows += rows_of(b)
        assert sorted(rows) == list(range(N)) and not loader._pipeline.pool.shared
