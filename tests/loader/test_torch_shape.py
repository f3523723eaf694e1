"""The loader as torch's DataLoader: attributes with torch's meanings, and the parts frameworks
rebuild it from (a torch DataLoader over loader.dataset / batch_sampler / collate_fn, as Accelerate
builds it; our class re-created with a DistributedSampler, as Lightning does)."""

import functools
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, Sampler, SequentialSampler

import deeplake_loader as dl
from deeplake_loader.errors import WorkerError
from tests.common.loader import as_lists, keep, record_worker, sleepy

from .conftest import N, image_for, rows_of


def check_rows(batch):
    """Every value in the batch belongs to the row its index names."""
    rows = rows_of(batch)
    for i, r in enumerate(rows):
        assert np.array_equal(np.asarray(batch["images"][i]), image_for(r)), r
        assert np.asarray(batch["vec"][i]).tolist() == [r, 2 * r]
    return rows


def rebuilt(loader):
    """What Accelerate's prepare_data_loader builds around our loader (one process)."""
    return DataLoader(loader.dataset, batch_sampler=loader.batch_sampler, collate_fn=loader.collate_fn,
                      num_workers=loader.num_workers, prefetch_factor=loader.prefetch_factor,
                      pin_memory=loader.pin_memory, timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                      multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
                      persistent_workers=loader.persistent_workers)


def test_a_bare_loader_answers_like_deeplake(loader_ds):
    loader = loader_ds.dataloader()
    assert (loader.batch_size, loader.drop_last, loader.num_workers, loader.pin_memory, loader.timeout,
            loader.persistent_workers, loader.generator, loader.collate_fn, loader.worker_init_fn,
            loader.multiprocessing_context) == (1, False, 0, False, 0, False, None, None, None, None)
    # deeplake answers 0; torch requires None without workers (a DataLoader built from these refuses 0)
    assert loader.prefetch_factor is None
    assert len(loader) == len(loader.batch_sampler) == N and loader.batch_sampler.batch_size == 1


def test_attributes_follow_the_chain(loader_ds):
    loader = (loader_ds.dataloader().batch(8, drop_last=True).shuffle()
              .pytorch(num_workers=2, prefetch_factor=3, persistent_workers=True, collate_fn=as_lists))
    assert (loader.batch_size, loader.drop_last, loader.num_workers, loader.prefetch_factor,
            loader.persistent_workers) == (8, True, 2, 3, True)
    assert loader.collate_fn.fn is as_lists
    assert loader.multiprocessing_context.get_start_method() == "fork"  # what our workers use (Linux)
    loader.multiprocessing_context = "forkserver"  # fresh interpreters on our own entry module: spawn's context
    assert loader.multiprocessing_context.get_start_method() == "spawn"
    assert isinstance(loader.sampler, Sampler) and not isinstance(loader.sampler, DistributedSampler)
    assert type(loader.batch_sampler) is BatchSampler and loader.batch_sampler.sampler is loader.sampler
    assert (loader.batch_sampler.batch_size, loader.batch_sampler.drop_last) == (8, True)
    assert len(loader) == len(loader.batch_sampler) == N // 8
    # loader.dataset is still the Deep Lake dataset for everything but torch's batch reads
    assert len(loader.dataset) == N and set(loader.dataset.tensors) == set(loader_ds.tensors)
    assert np.array_equal(loader.dataset.images[3].numpy(), image_for(3))


T = ["images", "vec", "labels"]
VARIANTS = {
    "plain": lambda ds: ds.dataloader().batch(8).pytorch(tensors=T),
    "shuffle": lambda ds: ds.dataloader().batch(8).shuffle().pytorch(tensors=T),
    "view": lambda ds: ds[[5, 3, 3, 9, 40, 41, 7]].dataloader().batch(3).shuffle().pytorch(tensors=T),
    "query+offset": lambda ds: ds.dataloader().query("select * where labels == 1").batch(4).offset(3)
    .pytorch(tensors=T),
    "drop_last": lambda ds: ds.dataloader().batch(16, drop_last=True).shuffle().pytorch(tensors=T),
    "transform": lambda ds: ds.dataloader().transform({"images": keep, "vec": keep, "labels": None, "index": None})
    .batch(8)
    .shuffle().pytorch(),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_torch_dataloader_built_from_the_parts_yields_the_loaders_rows(loader_ds, variant):
    loader = VARIANTS[variant](loader_ds)
    ours = sorted(r for b in loader for r in check_rows(b))
    epochs = []
    for _ in range(2):
        batches = list(rebuilt(loader))
        assert len(batches) == len(loader)
        assert [len(rows_of(b)) for b in batches] == [len(rows_of(b)) for b in loader]
        epochs.append([r for b in batches for r in check_rows(b)])
        assert isinstance(batches[0]["images"], torch.Tensor) and batches[0]["labels"].dtype == torch.int64
    for rows in epochs:
        if variant == "drop_last":  # which rows fall off the end changes with the shuffle
            assert len(set(rows)) == len(rows) == len(ours) == N // 16 * 16
        else:
            assert sorted(rows) == ours  # the loader's rows, each as often as the loader gives it
    if "shuffle" in variant or variant in ("view", "drop_last", "transform"):
        assert epochs[0] != epochs[1] and epochs[0] != sorted(epochs[0])


def test_torch_samplers_over_the_dataset_part_read_the_views_rows(loader_ds):
    """loader.dataset is indexed as torch indexes a dataset: positions 0..len-1 of the (queried) view."""
    view = loader_ds[[5, 3, 3, 9, 40, 41, 7]]
    loader = view.dataloader().batch(3).pytorch(tensors=["images", "vec"])
    assert len(loader.dataset) == 7
    plain = DataLoader(loader.dataset, batch_size=3, collate_fn=loader.collate_fn)  # torch's SequentialSampler
    assert [r for b in plain for r in check_rows(b)] == [5, 3, 3, 9, 40, 41, 7]
    queried = view.dataloader().query("select * where labels == 1").pytorch(tensors=["images", "vec"])
    assert len(queried.dataset) == 3  # rows 5, 9, 41
    assert [r for b in DataLoader(queried.dataset, batch_size=2, collate_fn=queried.collate_fn)
            for r in check_rows(b)] == [5, 9, 41]
    with pytest.raises(IndexError, match="position 7 is out of range"):
        loader.dataset.__getitems__([6, 7])


def test_the_parts_run_in_torch_worker_processes(loader_ds):
    """Accelerate passes num_workers and our spawn context on: torch's workers unpickle the dataset
    part (config and transforms by value, caches left behind) and decode there."""
    view = loader_ds[10:30]
    view.images.numpy()  # the dataset now holds loaded chunks, which do not pickle
    loader = view.dataloader().transform({"images": keep, "vec": lambda v: v + 0, "index": None}).batch(4).shuffle() \
        .pytorch(num_workers=2)
    rows = [r for b in rebuilt(loader) for r in check_rows(b)]
    assert sorted(rows) == list(range(10, 30))


def test_a_dataset_pickles_without_its_caches(loader_ds):
    view = loader_ds[[4, 2]]
    view.images.numpy()  # loads a chunk (memoryviews) into the shared reader cache
    copy = pickle.loads(pickle.dumps(view))
    assert np.array_equal(copy.images.numpy(), np.stack([image_for(4), image_for(2)]))
    assert copy.index_rows is not None and len(copy) == 2


@pytest.mark.parametrize("n_ranks", [2, 3])
def test_lightning_recreates_it_with_a_distributed_sampler_and_it_shards(loader_ds, n_ranks):
    """Lightning (use_distributed_sampler) makes a distributed sampler for the loader's sampler and
    re-creates our class from its attributes (the functions it runs under DDP): that becomes our
    own sharding."""
    from lightning.pytorch.trainer.connectors.data_connector import _get_distributed_sampler
    from lightning.pytorch.utilities.data import _update_dataloader

    loader = loader_ds.dataloader().batch(4).shuffle().pytorch(tensors=["images", "vec"])
    per_rank = []
    for rank in range(n_ranks):
        sampler = _get_distributed_sampler(loader, shuffle=True, overfit_batches=0, num_replicas=n_ranks, rank=rank)
        again = _update_dataloader(loader, sampler)
        assert type(again) is type(loader)
        assert isinstance(again.sampler, DistributedSampler)  # Lightning will not inject a second time
        assert (again.sampler.rank, again.sampler.num_replicas) == (rank, n_ranks)
        rows = [[r for r in check_rows(b)] for b in again]
        assert len(rows) == len(again)
        per_rank.append(rows)
    assert len({len(rows) for rows in per_rank}) == 1  # equal batch counts
    flat = [r for rows in per_rank for b in rows for r in b]
    per = -(-N // n_ranks)
    assert len(flat) == per * n_ranks and set(flat) == set(range(N))  # short ranks wrap to equal counts
    first = [r for b in per_rank[0] for r in b]
    assert sorted(first) == list(range(per)) and first != sorted(first)  # a contiguous shard, shuffled


def test_lightning_overfit_batches_sequential_sampler_turns_shuffle_off(loader_ds):
    from lightning.pytorch.utilities.data import _update_dataloader

    loader = loader_ds.dataloader().batch(8).shuffle().pytorch(tensors=["images", "vec"])
    again = _update_dataloader(loader, SequentialSampler(loader.dataset))
    assert [r for b in again for r in check_rows(b)] == list(range(N))


def test_lightning_predict_wrapping_keeps_the_batches(loader_ds):
    from lightning.pytorch.trainer.states import RunningStage
    from lightning.pytorch.utilities.data import _update_dataloader

    loader = loader_ds.dataloader().batch(8).pytorch(tensors=["images", "vec"])
    again = _update_dataloader(loader, loader.sampler, mode=RunningStage.PREDICTING)
    assert [rows_of(b) for b in again] == [rows_of(b) for b in loader]


def test_a_foreign_sampler_is_refused_by_name(loader_ds):
    loader = loader_ds.dataloader().batch(8).pytorch()

    class Odd(Sampler):
        def __iter__(self):
            return iter(range(1, N, 2))

        def __len__(self):
            return N // 2

    with pytest.raises(ValueError, match="Odd"):
        type(loader)(loader.dataset, sampler=Odd())
    with pytest.raises(TypeError, match="bogus"):
        type(loader)(loader.dataset, bogus=1)


def test_torch_style_construction_and_options(loader_ds):
    cls = type(loader_ds.dataloader())
    loader = cls(loader_ds, batch_size=5, shuffle=True, drop_last=True, collate_fn=as_lists)
    assert (loader.batch_size, loader.drop_last, len(loader)) == (5, True, N // 5)
    rows = [r for b in loader for r in rows_of(b)]
    assert sorted(rows) == list(range(N)) and rows != sorted(rows)
    opts = loader.with_torch_options(pin_memory=True, timeout=7, generator=torch.Generator())
    assert (opts.pin_memory, opts.timeout, opts.batch_size) == (True, 7, 5) and opts.generator is not None
    assert loader.with_torch_options(num_workers=2, multiprocessing_context="spawn").config.start_method == "exec"
    with pytest.raises(ValueError, match="multiprocessing_context='threads'"):
        loader.with_torch_options(num_workers=2, multiprocessing_context="threads")
    with pytest.raises(ValueError, match="in_order"):
        loader.with_torch_options(in_order=False)


def test_pin_memory_without_an_accelerator_is_a_noop(loader_ds):
    if torch.cuda.is_available():
        pytest.skip("an accelerator is present: batches are pinned")
    plain = loader_ds.dataloader().batch(8).pytorch(tensors=["images", "vec"])
    pinned = plain.with_torch_options(pin_memory=True)
    assert pinned.pin_memory is True
    for a, b in zip(plain, pinned):
        assert rows_of(a) == rows_of(b) and torch.equal(a["images"], b["images"])


def test_worker_init_fn_runs_once_in_each_worker(loader_ds, tmp_path):
    import os

    loader = loader_ds.dataloader().transform({"vec": keep}).batch(5).pytorch(num_workers=2)
    loader.worker_init_fn = functools.partial(record_worker, str(tmp_path))  # as Lightning sets it
    assert sum(1 for _ in loader) == N // 5
    seen = sorted(p.name.split("-") for p in tmp_path.iterdir())
    assert [w for w, _ in seen] == ["0", "1"] and all(int(pid) != os.getpid() for _, pid in seen)


def test_timeout_stops_a_wait_for_workers(loader_ds):
    loader = loader_ds.dataloader().transform({"vec": sleepy}).batch(5).pytorch(num_workers=1)
    with pytest.raises(WorkerError, match="timed out after 0.5 seconds"):
        next(iter(loader.with_torch_options(timeout=0.5)))


def _thread_name(sample):
    import threading

    return {**sample, "thread": threading.current_thread().name}


def test_a_rebuilt_loader_decodes_ahead_on_a_background_thread(loader_ds, monkeypatch):
    """One process, no workers (what Accelerate builds by default): the batches the sampler yields
    are decoded ahead, off the training thread, while the user's transform runs on the thread that
    asks (random.py: a background thread never touches the process-wide generators); each batch
    still holds exactly its rows."""
    import threading

    from deeplake_loader.pipeline import Pipeline

    decoded_on = []
    decode_rows = Pipeline.decode_rows

    def spy(self, rows, seed):
        decoded_on.append(threading.current_thread().name)
        return decode_rows(self, rows, seed)

    monkeypatch.setattr(Pipeline, "decode_rows", spy)
    loader = loader_ds.dataloader().transform(_thread_name).batch(5).shuffle().pytorch(tensors=["images", "vec"])
    for _ in range(2):
        decoded_on.clear()
        batches = list(rebuilt(loader))
        assert sorted(r for b in batches for r in check_rows(b)) == list(range(N))
        assert {b["thread"][0] for b in batches} == {threading.current_thread().name}
        assert len(decoded_on) == len(batches) and set(decoded_on) == {"deeplake_loader-lookahead"}


def test_a_rebuilt_loader_asked_out_of_order_decodes_directly(loader_ds):
    """Accelerate with two processes takes every other batch of our batch sampler: the lookahead
    steps aside and every batch is still exactly its rows."""
    loader = loader_ds.dataloader().transform(_thread_name).batch(5).shuffle().pytorch(tensors=["images", "vec"])
    every_other = [b for i, b in enumerate(loader.batch_sampler) if i % 2 == 1]
    got = [loader.collate_fn(loader.dataset.__getitems__(b)) for b in every_other]
    for want, b in zip(every_other, got):
        assert check_rows(b) == [int(r) for r in np.asarray(want)]  # no view, no query: positions are rows
    assert {b["thread"][0] for b in got} == {"MainThread"}


def _crop_chain(ds):
    from deeplake_loader.transforms import RandomResizedCrop

    return (ds.dataloader().transform({"images": RandomResizedCrop(8, scale=(0.1, 1.0), hflip=True), "vec": None,
                                       "index": None})
            .batch(6).shuffle().pytorch())


def _record(batches):
    return [(rows_of(b), np.asarray(b["images"]).copy(), np.asarray(b["vec"]).tolist()) for b in batches]


def _same(a, b):
    return len(a) == len(b) and all(ra == rb and np.array_equal(ia, ib) and va == vb
                                    for (ra, ia, va), (rb, ib, vb) in zip(a, b))


@pytest.mark.parametrize("workers,context", [(0, None), (2, "fork"), (2, "spawn")])
def test_a_rebuilt_dataloader_augments_by_epoch_and_batch_like_the_loader(loader_ds, seeded, workers, context):
    """A torch DataLoader rebuilt from our parts (Accelerate) seeds each batch's crops by (seed,
    epoch, rank, batch) as our own loop does: its epoch e is the loader's epoch e, crops included,
    whichever process decodes; epochs differ; and a seed repeats it even in spawned workers (whose
    process-wide root differs: the sampler's positions carry it)."""
    def run_rebuilt():
        seeded(11)
        loader = _crop_chain(loader_ds)
        r = DataLoader(loader.dataset, batch_sampler=loader.batch_sampler, collate_fn=loader.collate_fn,
                       num_workers=workers, multiprocessing_context=context)
        return [_record(r) for _ in range(3)]

    seeded(11)
    loader = _crop_chain(loader_ds)
    ours = [_record(loader) for _ in range(3)]
    loader.close()
    first, again = run_rebuilt(), run_rebuilt()
    for e, (epoch, want, repeat) in enumerate(zip(first, ours, again)):
        for rows, imgs, vec in epoch:
            assert vec == [[r, 2 * r] for r in rows]
        assert _same(epoch, want), f"epoch {e + 1}: the rebuilt DataLoader differs from the loader's own epoch"
        assert _same(epoch, repeat), f"epoch {e + 1}: the same seed gave other batches"
    assert not np.array_equal(first[0][0][1], first[1][0][1]), "every epoch got the same crops"


def test_transforms_of_a_rebuilt_dataloader_run_on_the_thread_that_asks(loader_ds, seeded):
    """The lookahead decodes on a background thread, but the user's transforms (which may draw from
    the process-wide generators) run on the thread that asked for the batch, inside a scope that
    leaves those generators as the training loop had them."""
    import threading

    seen = set()

    def noisy(v):
        seen.add(threading.current_thread().name)
        return v + np.random.randint(0, 3)

    seeded(5)
    loader = loader_ds.dataloader().transform({"vec": noisy, "index": None}).batch(4).pytorch()
    r = DataLoader(loader.dataset, batch_sampler=loader.batch_sampler, collate_fn=loader.collate_fn)
    np.random.seed(123)
    expected = np.random.RandomState(123)
    for b in r:
        assert np.random.random() == expected.random_sample()  # the loop's own stream, undisturbed
    assert seen == {threading.current_thread().name}
