"""Resume cost: time from ``load_state_dict`` to the first batch at k = 90 % of an epoch of 50,000
rows, against a fresh loader's first batch (target: at most 2x), and against resuming by replay
(iterating and discarding the first k batches: what a loader without a position has to do).

Rows (each timed on a freshly opened dataset, median of --repeat; 48x48 JPEGs + labels, batch 64):
  fresh       a new loader: iter() -> first batch
  resumed     a new loader: load_state_dict(state at 90 %) -> iter() -> first batch
  replay      a new loader: iter() -> skip 90 % of the batches -> next batch (timed once)
for no shuffle, .shuffle() (the default 2,048 MB buffer holds the whole epoch) and
.shuffle(buffer_size=16).

Usage: python3 bench/bench_resume.py [--n 50000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

BATCH = 64
DISTINCT = 256  # distinct files, cycled: the dataset builds in seconds


def dataset(n):
    import deeplake_loader as dl
    from deeplake_loader.sample import Sample

    path = str(C.DATA_DIR / f"resume_ds_{n}")
    if dl.exists(path) and len(dl.load(path, read_only=True)) == n:
        return path
    C.jpeg_corpus(DISTINCT, height=48, width=48)
    folder = next(p for p in C.DATA_DIR.iterdir() if p.name.startswith("jpg_48x48_RGB") and "quality90" in p.name)
    files = [str(folder / f"{i:05d}.jpg") for i in range(DISTINCT)]
    ds = dl.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("labels", htype="class_label")
        for s in range(0, n, 5000):
            m = min(5000, n - s)
            ds.extend({"images": [Sample(files[i % DISTINCT]) for i in range(s, s + m)],
                       "labels": [i % 10 for i in range(s, s + m)]})
    return path


def chain(path, shuffle):
    import deeplake_loader as dl

    c = dl.load(path, read_only=True).dataloader().batch(BATCH)
    if shuffle == "default":
        c = c.shuffle()
    elif shuffle is not None:
        c = c.shuffle(buffer_size=shuffle)
    return c.pytorch(num_threads=2)


def first_batch(path, shuffle, state=None, skip=0) -> float:
    loader = chain(path, shuffle)
    t0 = time.perf_counter()
    if state is not None:
        loader.load_state_dict(state)
    it = iter(loader)
    for _ in range(skip):
        next(it)
    next(it)
    dt = time.perf_counter() - t0
    it.close()
    loader.close()
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    C.warm_allocator()
    import deeplake_loader as dl

    dl.random.seed(7)
    path = dataset(args.n)
    print(C.machine_info())
    print(f"{args.n} rows of 48x48 JPEG + labels, batch {BATCH}, num_threads=2; seconds to the first batch "
          f"(median of {args.repeat}); numbers from a shared machine are noisy, compare the ratios")
    for shuffle in (None, "default", 16):
        loader = chain(path, shuffle)
        k = len(loader) * 9 // 10
        it = iter(loader)
        for _ in range(k):
            next(it)
        state = loader.state_dict()
        it.close()
        loader.close()
        fresh = statistics.median(first_batch(path, shuffle) for _ in range(args.repeat))
        resumed = statistics.median(first_batch(path, shuffle, state) for _ in range(args.repeat))
        replay = first_batch(path, shuffle, skip=k)
        name = {None: "no shuffle", "default": ".shuffle() (2,048 MB buffer)", 16: ".shuffle(buffer_size=16)"}[shuffle]
        ratio = resumed / fresh
        print(f"\n{name}: k = {k} of {len(loader)} batches")
        print(f"  fresh first batch           {fresh:8.3f} s")
        print(f"  resumed first batch         {resumed:8.3f} s   {ratio:5.2f}x fresh   target <= 2.00x  "
              f"{'OK' if ratio <= 2 else 'MISSED'}")
        print(f"  replay to the same batch    {replay:8.3f} s   {replay / resumed:7.1f}x resumed")
    print(f"  peak RSS: {C.peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
