"""Query engine: loading a 1,000,000-row label column, then a `where` over it (and over a ragged
multi-label column, reduced per row by the native loops of _kernels/ragged.pyx).

Targets: the where < 50 ms once the column is loaded; the load bound by reading chunks in bulk
(compared here with reading the same rows one sample at a time, on a slice).

Usage: python3 bench/bench_tql.py [--n 1000000]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402


def build(n):
    import deeplake_loader as dl

    path = str(C.DATA_DIR / f"tql_labels_tags_{n}")
    if dl.exists(path) and len(dl.load(path, read_only=True)) == n:
        return path
    ds = dl.empty(path, overwrite=True)
    rng = np.random.default_rng(0)
    with ds:
        ds.create_tensor("labels", htype="class_label", class_names=[f"c{i}" for i in range(10)])
        ds.create_tensor("score", dtype="float32")
        ds.create_tensor("tags", htype="class_label", class_names=[f"c{i}" for i in range(10)])
        counts = rng.integers(0, 4, n)
        flat = rng.integers(0, 10, int(counts.sum())).astype(np.uint32)
        ds.extend({"labels": list(rng.integers(0, 10, n).astype(np.uint32)), "score": list(rng.random(n).astype(np.float32)),
                   "tags": np.split(flat, np.cumsum(counts)[:-1])})
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    import deeplake_loader as dl
    from deeplake_loader.tql.evaluator import Evaluator
    from deeplake_loader.tql.parser import parse

    print(C.machine_info())
    path = build(args.n)
    ds = dl.load(path, read_only=True)
    reader = ds._reader("labels")
    load = C.time_it(lambda: (reader.forget(), reader.column()), repeat=3)
    m = 20_000
    one_by_one = C.time_it(lambda: [reader.read(i) for i in range(m)], repeat=1) * args.n / m
    print(f"column load of {args.n:,} labels: {load * 1e3:.1f} ms ({args.n / load / 1e6:.1f} M rows/s); "
          f"one sample at a time would take ~{one_by_one:.1f} s ({one_by_one / load:.0f}x)")
    for q in ["select * where labels == 3", "select * where labels in (1, 'c2', 7) and score > 0.5",
              "select * where labels != 5 order by score desc limit 1000",
              "select * where contains(tags, 'c3')", "select * where len(tags) >= 2 and any(tags > 7)"]:
        ev = Evaluator(ds, q)
        node = parse(q)
        ev.query(node)  # loads the columns once
        t = C.time_it(lambda: ev.query(node), repeat=5)
        print(f"  {t * 1e3:7.1f} ms  {q}   (target < 50 ms for the where)")
    t0 = time.perf_counter()
    res = ds.query("select * where labels == 3")
    print(f"ds.query end to end (load + where): {(time.perf_counter() - t0) * 1e3:.1f} ms, {len(res):,} rows")
    C.print_table([], unit="")


if __name__ == "__main__":
    main()
