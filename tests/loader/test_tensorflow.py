"""The TensorFlow path: batches handed to TensorFlow without a copy while their pooled memory stays
leased, and the batched tf.data.Dataset (spec, cardinality, epochs)."""

import numpy as np
import pytest

from .conftest import N, image_for, rows_of

tf = pytest.importorskip("tensorflow")

from deeplake_loader.iterators.tensorflow import hand_over  # noqa: E402
from deeplake_loader.pipeline.memory import ALIGN, BufferPool  # noqa: E402


def test_pooled_arrays_are_handed_over_without_a_copy():
    pool = BufferPool()
    arr = pool.array((4, 24, 32, 3), np.uint8)
    assert arr.ctypes.data % ALIGN == 0
    arr[:] = np.arange(arr.size, dtype=np.uint64).reshape(arr.shape) % 251
    t = hand_over(arr)
    assert np.asarray(t).ctypes.data == arr.ctypes.data  # the tensor reads the pooled memory itself
    assert np.array_equal(t.numpy(), arr)


@pytest.mark.parametrize("make", ["unaligned", "strided", "readonly", "bool"])
def test_arrays_tensorflow_cannot_take_are_copied(make):
    """TensorFlow aborts the process on unaligned DLPack memory: those arrays must be copied."""
    raw = np.frombuffer(bytearray(4096), np.uint8)
    base = raw[(-raw.ctypes.data) % ALIGN:]
    arr = {"unaligned": lambda: np.frombuffer(base.data, np.uint8, count=600, offset=3).reshape(20, 30),
           "strided": lambda: np.arange(200, dtype=np.int32).reshape(20, 10)[:, ::2],
           "readonly": lambda: np.frombuffer(bytes(range(256)), np.uint8),
           "bool": lambda: np.arange(10) % 3 == 0}[make]()
    if make == "unaligned":
        arr[:] = np.arange(600).reshape(20, 30) % 256
    t = hand_over(arr)
    assert np.array_equal(t.numpy(), arr)
    assert int(tf.reduce_sum(tf.cast(t, tf.int64))) == int(arr.astype(np.int64).sum())  # TF ops read it


def test_tensorflow_batches_survive_the_next_batch(loader_ds):
    """A batch TensorFlow still holds keeps its pooled memory: later batches never overwrite it."""
    kept = list(loader_ds.dataloader().batch(10).shuffle().tensorflow(tensors=["images"]))
    assert sum(int(b["images"].shape[0]) for b in kept) == N
    for b in kept:
        for i, r in enumerate(rows_of(b)):
            assert np.array_equal(b["images"][i].numpy(), image_for(r))


def test_tf_dataset_epochs_cardinality_and_rows(loader_ds):
    loader = loader_ds.dataloader().batch(8).shuffle().tensorflow(tensors=["images", "vec"])
    data = loader.tf_dataset()
    assert int(data.cardinality()) == len(loader) == -(-N // 8)
    epochs = []
    for _ in range(2):  # the first pass continues the epoch the element spec came from
        rows = []
        for b in data:
            for i, r in enumerate(rows_of(b)):
                assert b["vec"][i].numpy().tolist() == [r, 2 * r]
                assert np.array_equal(b["images"][i].numpy(), image_for(r))
                rows.append(r)
        assert sorted(rows) == list(range(N))
        epochs.append(rows)
    assert epochs[0] != epochs[1]


def test_tf_dataset_unbatched_is_per_sample(loader_ds):
    from deeplake_loader.iterators.tensorflow import dataset

    samples = dataset(loader_ds.dataloader().batch(16).tensorflow(tensors=["vec", "labels"])).unbatch()
    got = [(s["vec"].numpy().tolist(), int(s["index"].numpy()[0])) for s in samples]
    assert got == [([i, 2 * i], i) for i in range(N)]


def test_tf_dataset_needs_a_tensorflow_loader(loader_ds):
    from deeplake_loader.iterators.tensorflow import dataset

    with pytest.raises(ValueError, match=r"\.tensorflow\(\)"):
        dataset(loader_ds.dataloader().batch(4).pytorch())


def test_keras_knows_the_steps_of_an_epoch(loader_ds):
    keras = pytest.importorskip("keras")
    loader = loader_ds.dataloader().batch(8).shuffle().tensorflow(tensors=["vec", "labels"])
    data = loader.tf_dataset().map(lambda b: (tf.cast(b["vec"], tf.float32) / 100.0, tf.reshape(b["labels"], [-1])))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(data, epochs=1, verbose=0)
    assert history.params["steps"] == len(loader)


def test_transforms_under_tf_data_leave_the_process_wide_generators_alone(loader_ds):
    """tf.data pulls batches on a thread of its own while the training step runs on another: the
    transforms it runs there must not reseed NumPy's, Python's or torch's global generators (the
    other thread may be drawing dropout masks from them). A transform holds its batch open while a
    checker thread reads the global states: they are still the ones set before the epoch."""
    import random
    import threading

    entered, release, armed, seen = threading.Event(), threading.Event(), threading.Event(), {}

    def hold(v):
        if armed.is_set() and not entered.is_set():
            entered.set()
            release.wait(30)
        return v

    def check():
        if entered.wait(60):
            seen["numpy"] = np.random.get_state()[1].tolist() == before_np
            seen["python"] = random.getstate() == before_py
        release.set()

    loader = loader_ds.dataloader().transform({"vec": hold, "index": None}).batch(5).tensorflow()
    tfds = loader.tf_dataset()  # its first batch (for the spec) is pulled here, on this thread; the rest on tf.data's
    np.random.seed(99)
    random.seed(99)
    before_np, before_py = np.random.get_state()[1].tolist(), random.getstate()
    armed.set()
    checker = threading.Thread(target=check)
    checker.start()
    rows = [r for b in tfds for r in b["index"].numpy().reshape(-1).tolist()]
    checker.join(60)
    assert seen == {"numpy": True, "python": True}
    assert sorted(rows) == list(range(N))
