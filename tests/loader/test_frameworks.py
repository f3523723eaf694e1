"""Real framework clients train over our loader (CPU): PyTorch Lightning (one process and DDP on
gloo), Hugging Face Accelerate (one process and two), Keras 3 on TensorFlow. Every batch holds the
rows its index names (checked inside the training step); every row is trained on once per epoch,
shuffled."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.common import frameworks
from tests.common.frameworks import BATCH

from .conftest import N

SCRIPT = str(Path(frameworks.__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(args, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
               PYTHONPATH=str(Path(SCRIPT).parents[2]))
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]


def assert_each_row_once_shuffled(result, rows=range(N)):
    epochs = result["epochs"]
    assert len(epochs) == 2
    for seen in epochs:
        assert sorted(seen) == sorted(rows)
        assert seen != sorted(seen)
    assert epochs[0] != epochs[1]  # a new order every epoch


@pytest.mark.parametrize("loader", ["chain", "chain_workers", "ds_pytorch"])
def test_lightning_fits_every_row_once_per_epoch_shuffled(loader_ds, tmp_path, loader):
    result = frameworks.run_lightning(loader_ds.path, tmp_path, 1, loader)
    assert_each_row_once_shuffled(result)
    assert result["batches"] == [-(-N // BATCH)] * 2


@pytest.mark.distributed
@pytest.mark.slow
@pytest.mark.parametrize("loader", ["chain", "chain_distributed", "ds_pytorch"])
def test_lightning_ddp_two_ranks_split_the_rows(loader_ds, tmp_path, loader):
    """chain, ds_pytorch: Lightning injects its DistributedSampler and re-creates our loader, which
    turns it into our sharding; chain_distributed: the loader is already sharded, Lightning leaves
    it alone."""
    run_ranks([sys.executable, SCRIPT, "lightning", loader_ds.path, str(tmp_path), "2", loader])
    ranks = frameworks.read_ranks(tmp_path, 2)
    assert ranks[0]["batches"] == ranks[1]["batches"] == [-(-(N // 2) // BATCH)] * 2  # equal batch counts
    for epoch in range(2):
        mine = [r["epochs"][epoch] for r in ranks]
        assert sorted(mine[0] + mine[1]) == list(range(N))  # every row once across the ranks
        assert sorted(mine[0]) == list(range(N // 2))  # contiguous shards
    for r in ranks:
        assert_each_row_once_shuffled(r, rows=sorted(r["epochs"][0]))


def test_accelerate_prepared_loader_sees_every_row_once_shuffled(loader_ds, tmp_path):
    from accelerate.state import AcceleratorState, GradientState

    try:
        result = frameworks.run_accelerate(loader_ds.path, tmp_path, "chain")
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
    assert_each_row_once_shuffled(result)
    assert result["batches"] == [-(-N // BATCH)] * 2


def test_accelerate_with_workers_over_s3_changes_crops_each_epoch_and_repeats_them_under_a_seed(moto_s3, loader_ds):
    """Accelerate rebuilds our loader as a torch DataLoader with our two workers (forked, as its
    multiprocessing_context says) over an s3 dataset (moto) with a random crop: every batch holds
    its rows, the crops change from epoch to epoch, and the same seed gives the same crops."""
    from accelerate.state import AcceleratorState, GradientState

    url = "s3://lake/accelerate_crops"
    moto_s3.upload(loader_ds.path, url)
    runs = []
    for seed in (5, 5, 6):
        try:
            runs.append(frameworks.run_accelerate_crops(url, moto_s3.creds(), seed))
        finally:
            AcceleratorState._reset_state(reset_partial_state=True)
            GradientState._reset_state()
            import deeplake_loader as dl

            dl.random.seed(None)
    first, again, other = runs
    for epoch in first:
        assert sorted(r for rows, _ in epoch for r in rows) == list(range(N))
    assert [c for _, c in first[0]] != [c for _, c in first[1]], "the same crops in both epochs"
    assert first == again, "the same seed gave other rows or crops"
    assert first != other


@pytest.mark.distributed
@pytest.mark.slow
def test_accelerate_two_processes_split_the_batches(loader_ds, tmp_path):
    """Accelerate shards our batch sampler (every other batch per process); the shuffle is the same
    on both because our sampler draws its seed from the generator Accelerate keeps in step. Its
    even_batches pads the last round with rows from the start, as it does for any DataLoader."""
    run_ranks([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(free_port()), SCRIPT, "accelerate", loader_ds.path, str(tmp_path), "1", "chain"])
    ranks = frameworks.read_ranks(tmp_path, 2)
    n_batches = -(-N // BATCH)
    assert ranks[0]["batches"] == ranks[1]["batches"] == [-(-n_batches // 2)] * 2
    for epoch in range(2):
        seen = ranks[0]["epochs"][epoch] + ranks[1]["epochs"][epoch]
        assert set(seen) == set(range(N))
        assert len(seen) - N < 2 * BATCH  # only the padding of the last round repeats rows
    assert ranks[0]["epochs"][0] != ranks[0]["epochs"][1]


def test_keras_fits_on_the_loaders_tf_dataset(loader_ds):
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    seen = []

    def to_xy(batch):
        return tf.cast(batch["vec"], tf.float32) / 100.0, tf.reshape(batch["labels"], [-1])

    loader = loader_ds.dataloader().batch(BATCH).shuffle().tensorflow(tensors=["vec", "labels"])
    data = loader.tf_dataset()
    for b in data:
        assert b["vec"].numpy()[:, 0].tolist() == b["index"].numpy().reshape(-1).tolist()
        seen.extend(b["index"].numpy().reshape(-1).tolist())
    assert sorted(seen) == list(range(N))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(data.map(to_xy), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and all(l == l for l in history.history["loss"])  # not NaN


def test_keras_fits_on_ds_tensorflow_batched_by_tensorflow(loader_ds):
    """Deep Lake 3's ds.tensorflow(): unbatched samples that the script maps and batches itself."""
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")

    def to_xy(sample):
        return tf.cast(sample["vec"], tf.float32) / 100.0, tf.cast(sample["labels"][0], tf.int64)

    samples = loader_ds.tensorflow(tensors=["vec", "labels"])
    assert int(samples.cardinality()) == N
    rows = [int(s["vec"].numpy()[0]) for s in samples]  # vec is [row, 2 * row]
    assert sorted(rows) == list(range(N))
    data = samples.map(to_xy).batch(32)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(data, epochs=1, verbose=0)
    assert history.params["steps"] == -(-N // 32)  # Keras knows the length of an epoch
    assert len(history.history["loss"]) == 1 and history.history["loss"][0] == history.history["loss"][0]
