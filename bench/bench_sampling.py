"""Weighted sampling and shuffling kernels.

Rows: draws/s of the alias sampler vs numpy.random.Generator.choice(p=...) for 10^3..10^6 weights
and 10^6 draws (target >= 5x), weighted sampling without replacement vs Generator.choice(replace=False),
and the reservoir shuffle's throughput and quality for several buffer sizes.

Usage: python3 bench/bench_sampling.py
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402

from deeplake_loader._kernels.sampling import AliasSampler, sample_without_replacement  # noqa: E402
from deeplake_loader._kernels.shuffle import ReservoirShuffler, locality, permutation, quality  # noqa: E402

DRAWS = 1_000_000


def main():
    print(C.machine_info())
    gen = np.random.default_rng(0)
    for n in (10**3, 10**4, 10**5, 10**6):
        w = gen.random(n) + 0.01
        p = w / w.sum()
        out = np.empty(DRAWS, np.int64)
        sampler = AliasSampler(w)
        ours = C.time_it(lambda: sampler.draw(DRAWS, 1, out=out), repeat=5)
        build = C.time_it(lambda: AliasSampler(w), repeat=3)
        base = C.time_it(lambda: gen.choice(n, size=DRAWS, p=p), repeat=3)
        C.print_table([("numpy choice(p)", DRAWS / base), ("alias draw", DRAWS / ours)], unit="draws/s",
                      ratios=[("alias draw", "numpy choice(p)", 5.0)],
                      title=f"{n:,} weights, {DRAWS:,} draws with replacement (alias table build {build * 1e3:.1f} ms)")
    n, k = 10**6, 10**5
    w = gen.random(n) + 0.01
    ours = C.time_it(lambda: sample_without_replacement(w, k, 1), repeat=3)
    base = C.time_it(lambda: gen.choice(n, size=k, replace=False, p=w / w.sum()), repeat=1, warmup=0)
    C.print_table([("numpy choice(replace=False)", k / base), ("exponential keys", k / ours)], unit="rows/s",
                  ratios=[("exponential keys", "numpy choice(replace=False)", None)],
                  title=f"{k:,} of {n:,} rows without replacement")

    rows, per_chunk, size = 200_000, 1000, 100_000  # 100 kB samples in chunks of 1000
    print(f"reservoir shuffle of {rows:,} rows ({per_chunk} per chunk, {size // 1000} kB each), chunk order permuted:")
    for budget_mb in (16, 256, 2048, 100_000):
        def run():
            r = ReservoirShuffler(budget_mb * 10**6, 3)
            outs = []
            for c in permutation(rows // per_chunk, 7):
                ids = np.arange(c * per_chunk, (c + 1) * per_chunk)
                outs.append(r.push(ids, np.full(per_chunk, size)))
            outs.append(r.drain())
            return np.concatenate(outs)

        t = C.time_it(run, repeat=3)
        order = run()
        disp, rho = quality(order)
        print(f"  buffer {budget_mb:>6} MB: {rows / t / 1e6:6.1f} M rows/s, same-chunk neighbours "
              f"{locality(order, per_chunk):.3f}, mean |displacement| {disp:.3f}, rank correlation {rho:+.3f}")
    full = permutation(rows, 1)
    disp, rho = quality(full)
    print(f"  full permutation   : same-chunk neighbours {locality(full, per_chunk):.3f}, "
          f"mean |displacement| {disp:.3f}, rank correlation {rho:+.3f}")


if __name__ == "__main__":
    main()
