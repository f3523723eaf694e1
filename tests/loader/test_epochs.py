"""Epoch lifecycles, property-style: whatever sequence of epochs, early breaks, abandoned iterators
and closes a training loop runs — with 0 or 2 worker processes, persistent or not, shuffled or not —
every batch holds exactly the rows its ``index`` names, and a finished epoch holds every row once.

The sequences are drawn from numpy generators with fixed seeds (the seed is in the test id, so a
failure reproduces). Worker processes only start with a transform, so every loader has one (an
identity per-tensor transform, which must not change the data either).

With ``ignore_errors`` (the ``ignore`` cases, over a copy of the dataset whose images of ``BAD``
rows do not decode) the same holds for the rows that can be read: a finished epoch holds each of
them once, in full batches, and its part of the summary names exactly the bad rows.
"""

import shutil
import threading

import numpy as np
import pytest

from tests.common import damage
from tests.common.loader import keep

from .conftest import N, image_for, rows_of


BAD = (2, 3, 17, 31, 49)  # rows of the damaged copy whose images do not decode


@pytest.fixture(scope="module")
def damaged_ds(loader_ds, tmp_path_factory):
    import deeplake_loader as dl

    path = tmp_path_factory.mktemp("epochs_damaged") / "ds"
    shutil.copytree(loader_ds.path, path)
    damage.replace_samples(path, "images", {r: damage.not_an_image(200) for r in BAD})
    return dl.load(str(path), read_only=True)


def check_batch(b):
    """Every sample of the batch is the sample of the row its index names (images encode the row in
    their pixels, ``vec`` is [row, 2*row])."""
    rows = rows_of(b)
    images, vec = np.asarray(b["images"]), np.asarray(b["vec"])
    assert len(rows) == len(images) == len(vec)
    for img, v, row in zip(images, vec, rows):
        assert v.tolist() == [row, 2 * row], f"vec {v.tolist()} under index {row}"
        assert np.array_equal(img, image_for(row)), f"image of another row under index {row}"
    return rows


def random_sequence(rng):
    """A loader configuration and a list of epochs: (batches to take or None for all, how to leave
    an unfinished epoch ('break' drops the iterator, 'abandon' keeps it alive unfinished while the
    next epoch runs), close the loader afterwards)."""
    cfg = dict(batch=int(rng.integers(1, 8)), shuffle=bool(rng.integers(0, 2)), prefetch=int(rng.integers(1, 4)))
    n_batches = -(-N // cfg["batch"])
    epochs = []
    for _ in range(int(rng.integers(3, 6))):
        take = int(rng.integers(0, n_batches + 1))
        epochs.append((None if take == n_batches else take, "break" if rng.random() < 0.6 else "abandon",
                       rng.random() < 0.25))
    return cfg, epochs


def loader_threads():
    return {t for t in threading.enumerate() if t.name.startswith("deeplake_loader")}


def run_sequence(loader_ds, workers, persistent, seed, ignore=False):
    rng = np.random.default_rng(seed)
    cfg, epochs = random_sequence(rng)
    loader = (loader_ds.dataloader(ignore_errors=ignore).transform({"images": keep, "vec": keep, "index": None})
              .batch(cfg["batch"]).shuffle(cfg["shuffle"], buffer_size=1)
              .pytorch(num_workers=workers, persistent_workers=persistent, prefetch_factor=cfg["prefetch"]))
    good = [r for r in range(N) if not ignore or r not in BAD]
    started = 0  # epochs begun (the summary numbers them)
    abandoned = []  # unfinished iterators kept alive (as a framework holding its last iterator would)
    pids = set()
    try:
        for take, leave, close in epochs:
            it = iter(loader)
            started += 1
            seen, sizes = [], []
            for k, b in enumerate(it):
                rows = check_batch(b)
                sizes.append(len(rows))
                seen += rows
                if take is not None and k + 1 >= take:
                    break
            if take is None:
                assert sorted(seen) == good, "a finished epoch holds every row exactly once"
                assert sizes[:-1] == [cfg["batch"]] * (len(sizes) - 1)
                if ignore:
                    assert sorted(s.row for s in loader.summary if s.epoch == started) == list(BAD)
            elif leave == "abandon":
                abandoned.append(it)
            del it
            pipe = loader._pipeline
            if pipe is not None and pipe._workers is not None:
                pids |= {p.pid for p in pipe._workers.procs}
            if close:
                loader.close()
        # the loader still works after all that
        seen = [r for b in loader for r in check_batch(b)]
        assert sorted(seen) == good
    finally:
        loader.close()
        abandoned.clear()
    return pids


CASES = ([(0, False, seed) for seed in (101, 102, 103, 104, 105, 106)]
         + [(2, True, seed) for seed in (201, 202, 203, 204, 205)]
         + [(2, False, seed) for seed in (301, 302)])
IGNORE_CASES = [(0, False, 401), (0, False, 402), (2, True, 403), (2, False, 404)]


@pytest.mark.parametrize("workers,persistent,seed", CASES, ids=[f"w{w}-{'p' if p else 'np'}-seed{s}" for w, p, s in CASES])
def test_every_batch_holds_the_rows_its_index_names(loader_ds, workers, persistent, seed):
    import psutil

    threads = loader_threads()
    pids = run_sequence(loader_ds, workers, persistent, seed)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert loader_threads() <= threads  # every stage thread and worker keeper thread has ended


@pytest.mark.parametrize("workers,persistent,seed", IGNORE_CASES,
                         ids=[f"w{w}-{'p' if p else 'np'}-seed{s}" for w, p, s in IGNORE_CASES])
def test_with_ignore_errors_every_batch_holds_the_good_rows_its_index_names(damaged_ds, workers, persistent, seed):
    import psutil

    threads = loader_threads()
    pids = run_sequence(damaged_ds, workers, persistent, seed, ignore=True)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert loader_threads() <= threads


def test_persistent_workers_after_an_early_break_never_deliver_the_old_epochs_batches(loader_ds):
    """The case of issue 10, spelled out: results still in flight when an epoch is left early must
    not come back as batches of the next epoch (whose batch numbers restart at 0)."""
    loader = (loader_ds.dataloader().transform({"images": keep, "vec": keep, "index": None}).batch(2).shuffle(buffer_size=1)
              .pytorch(num_workers=2, persistent_workers=True, prefetch_factor=3))
    with loader:
        for epoch in range(3):
            for k, b in enumerate(loader):
                check_batch(b)
                if epoch == 0 and k == 1:
                    break


def test_a_superseded_epoch_says_so_instead_of_giving_wrong_batches(loader_ds):
    """Persistent workers are shared by the loader's epochs: starting a new epoch while an older one
    is unfinished replaces it; resuming the old iterator raises instead of delivering anything."""
    from deeplake_loader.errors import DeepLakeLoaderError

    loader = (loader_ds.dataloader().transform({"images": keep, "vec": keep, "index": None}).batch(5).shuffle(buffer_size=1)
              .pytorch(num_workers=2, persistent_workers=True))
    with loader:
        old = iter(loader)
        check_batch(next(old))
        new = iter(loader)
        seen = check_batch(next(new))
        with pytest.raises(DeepLakeLoaderError, match="newer epoch"):
            next(old)
        seen += [r for b in new for r in check_batch(b)]
        assert sorted(seen) == list(range(N))
