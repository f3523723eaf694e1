"""Train a small CNN with Keras 3 (TensorFlow backend) on the loader's tf.data.Dataset.

    python3 examples/train_keras.py [--images 2000] [--epochs 2] [--workdir ...]

The dataset is the one examples/demo.py generates (built here if missing). ``.tensorflow()`` hands
each decoded batch to TensorFlow without a copy; ``loader.tf_dataset()`` is the tf.data.Dataset
``model.fit`` takes (its length is known, so Keras shows the steps of an epoch). The random
resized crop runs inside the JPEG decode. Written against the deeplake 3 API (``import deeplake``
runs the same code).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import deeplake_loader as deeplake  # noqa: E402
from deeplake_loader.transforms import RandomResizedCrop  # noqa: E402
from demo import CLASSES, build  # noqa: E402  (the demo's dataset)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "deeplake_loader_demo"))
    args = ap.parse_args(argv)

    import keras
    import tensorflow as tf

    path = os.path.join(args.workdir, f"shapes_{args.images}")
    build(path, args.images)
    ds = deeplake.load(path, read_only=True)
    deeplake.random.seed(0)
    keras.utils.set_random_seed(0)
    loader = (ds.dataloader().transform({"images": RandomResizedCrop(96, scale=(0.5, 1.0)), "labels": None})
              .batch(args.batch).shuffle().tensorflow(num_threads=2))

    def to_xy(batch):
        return tf.cast(batch["images"], tf.float32) / 255.0, tf.reshape(batch["labels"], [-1])

    data = loader.tf_dataset().map(to_xy)
    net = keras.Sequential([
        keras.Input((96, 96, 3)),
        keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(CLASSES)),
    ])
    net.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=["accuracy"],
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class Speed(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            dt = time.perf_counter() - self.t0
            print(f"epoch {epoch + 1}: loss {logs['loss']:.3f}, accuracy {logs['accuracy']:.1%}, "
                  f"{len(ds) / dt:,.0f} images/s (decode + crop + train)", flush=True)

    # shuffle=False: the loader shuffles (Keras cannot shuffle a tf.data.Dataset itself)
    history = net.fit(data, epochs=args.epochs, verbose=0, shuffle=False, callbacks=[Speed()])
    loader.close()
    return [{"loss": l, "accuracy": a} for l, a in zip(history.history["loss"], history.history["accuracy"])]


if __name__ == "__main__":
    main()
