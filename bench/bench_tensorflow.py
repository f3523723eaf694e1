"""TensorFlow: our loader against the tf.data pipeline a Keras user already has, on the same files.

One epoch of 5,000 JPEGs (500x375, q90) + labels, batch 64, num_threads=2; each row in its own
process, rows interleaved over ``--rounds`` rounds (the median and best round are printed):
  tf_data       tf.data over the folder: read_file -> decode_jpeg, num_parallel_calls=AUTOTUNE,
                batch(64), prefetch(AUTOTUNE) (the baseline)
  pytorch       ours, .pytorch(num_threads=2)
  tensorflow    ours, .tensorflow(num_threads=2), iterated in Python
  tf_dataset    ours, .tensorflow(num_threads=2).tf_dataset(), iterated as model.fit does
  ds_tf_batch   ds.tensorflow().batch(64): per-sample tf.data (on our batched path, unbatched in
                TensorFlow) batched again by TensorFlow
Each row also prints images per CPU-second of its process (all its threads): on a loaded machine
that shows each path's cost even when the wall-clock rates are unreliable.

Usage: python3 bench/bench_tensorflow.py [--n 5000] [--rounds 3] [--quick]
"""
from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

from bench_loader import corpus_files, dataset  # noqa: E402  (the same files and dataset)

BATCH = 64
CONFIGS = ["tf_data", "pytorch", "tensorflow", "tf_dataset", "ds_tf_batch"]
TARGETS = [("tensorflow", "pytorch", 0.9), ("tensorflow", "tf_data", 1.5), ("tf_dataset", "tf_data", 1.5),
           ("ds_tf_batch", "tf_data", 1.2)]


def _epoch(name, n):
    """(images, the iterable of one epoch) for config ``name``."""
    if name == "tf_data":
        import tensorflow as tf

        files = corpus_files(n)

        def load(path, label):
            return tf.io.decode_jpeg(tf.io.read_file(path), channels=3), label

        data = (tf.data.Dataset.from_tensor_slices((files, [i % 10 for i in range(n)]))
                .map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH).prefetch(tf.data.AUTOTUNE))
        return lambda: (int(labels.shape[0]) for _, labels in data)
    import deeplake_loader as dl

    ds = dl.load(dataset(n), read_only=True)
    if name == "pytorch":
        import torch

        torch.set_num_threads(1)
        loader = ds.dataloader().batch(BATCH).pytorch(num_threads=2)
        return lambda: (len(b["labels"]) for b in loader)
    loader = ds.dataloader().batch(BATCH).tensorflow(num_threads=2)
    if name == "tensorflow":
        return lambda: (int(b["labels"].shape[0]) for b in loader)
    if name == "tf_dataset":
        data = loader.tf_dataset()
        return lambda: (int(b["labels"].shape[0]) for b in data)
    if name == "ds_tf_batch":
        if hasattr(ds, "tensorflow"):
            per_sample = ds.tensorflow(tensors=["images", "labels"])
        else:  # until ds.tensorflow() exists: what it is built on
            from deeplake_loader.iterators.tensorflow import dataset as batched

            per_sample = batched(loader).unbatch()
        data = per_sample.batch(BATCH)
        return lambda: (int(b["labels"].shape[0]) for b in data)
    raise ValueError(name)


def run_config(name, n):
    C.warm_allocator()
    epoch = _epoch(name, n)
    sum(epoch())  # warm-up epoch: imports, thread pools, page cache
    t0, c0 = time.perf_counter(), time.process_time()
    count = sum(epoch())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"rate": count / wall, "per_cpu_s": count / cpu, "count": count, "peak_rss_mb": C.peak_rss_mb()}


def main(argv=None):
    args = C.corpus_args(argv, __doc__, run_config, dataset, quick_n=640, rounds=3)
    if args is None:
        return 0
    n, rounds = args.n, args.rounds
    runs = {name: [] for name in CONFIGS}
    for r in range(rounds):
        for name in CONFIGS:
            runs[name].append(C.run_config(__file__, n, name))
            x = runs[name][-1]
            print(f"  round {r + 1} {name:<12} {x['rate']:8.1f} images/s  {x['per_cpu_s']:8.1f} images/CPU-s  "
                  f"peak RSS {x['peak_rss_mb']:5.0f} MiB", flush=True)
    med = {k: statistics.median(x["rate"] for x in v) for k, v in runs.items()}
    best = {k: max(x["rate"] for x in v) for k, v in runs.items()}
    eff = {k: statistics.median(x["per_cpu_s"] for x in v) for k, v in runs.items()}
    print(f"one epoch of {n} images, batch {BATCH}, num_threads=2 (median of {rounds} rounds | best round | "
          "images per CPU-second):")
    for k in CONFIGS:
        print(f"  {k:<12} {med[k]:8.1f} | {best[k]:8.1f} images/s | {eff[k]:8.1f} images/CPU-s")
    for a, b, target in TARGETS:
        r, rb, re = med[a] / med[b], best[a] / best[b], eff[a] / eff[b]
        print(f"  {a} / {b}: {r:5.2f}x (best rounds {rb:5.2f}x, per CPU-s {re:5.2f}x)   target >= {target:.2f}x  "
              f"{'OK' if r >= target else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
