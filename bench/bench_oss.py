"""Deep Lake 3's older entry point, ``ds.pytorch(num_workers=2, batch_size=64, shuffle=True)``: ours
vs the equivalent ``ds.dataloader()`` chain vs real deeplake 3.9.52's own ``ds.pytorch()``.

One epoch of the bench_loader dataset (5,000 JPEGs 500x375 q90 + labels) to torch tensors, each
row in its own process, the rows interleaved over ``--rounds`` rounds (best of each row kept):

  ds_pytorch     ours: ds.pytorch(num_workers=2, batch_size=64, shuffle=True)
  chain          ours: ds.dataloader().batch(64).shuffle().pytorch(num_workers=2)
  deeplake       deeplake 3.9.52's ds.pytorch(...) with the same arguments, run in the side venv
                 the tests build (tests/common/dl3.py; skipped when it is not there), on the same
                 dataset folder

Timed from building the loader to the end of the epoch (what a training script waits for).
Targets: ds_pytorch within 10 % of chain; ds_pytorch >= 2x deeplake.

Usage: python3 bench/bench_oss.py [--n 5000] [--quick] [--rounds 2]
"""
from __future__ import annotations

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _common as C  # noqa: E402
import bench_loader  # noqa: E402  (its dataset: the same files every loader bench reads)

BATCH = 64
ROWS = ["ds_pytorch", "chain", "deeplake"]

_DEEPLAKE = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import deeplake
t0 = time.perf_counter()
ds = deeplake.load(sys.argv[1], read_only=True, verbose=False)
loader = ds.pytorch(num_workers=2, batch_size=int(sys.argv[2]), shuffle=True)
count, first = 0, None
for batch in loader:
    if first is None:
        first = time.perf_counter() - t0
    count += len(batch["labels"])
dt = time.perf_counter() - t0
import resource
print(json.dumps({"rate": count / dt, "count": count, "seconds": dt, "first_batch_s": first,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_config(name, n):
    C.warm_allocator()
    import torch

    import deeplake_loader as dl

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ds = dl.load(bench_loader.dataset(n), read_only=True)
    if name == "ds_pytorch":
        loader = ds.pytorch(num_workers=2, batch_size=BATCH, shuffle=True)
    else:
        loader = ds.dataloader().batch(BATCH).shuffle().pytorch(num_workers=2)
    count, first = 0, None
    for batch in loader:
        if first is None:
            first = time.perf_counter() - t0
        count += len(batch["labels"])
    dt = time.perf_counter() - t0
    loader.close()
    return {"rate": count / dt, "count": count, "seconds": dt, "first_batch_s": first, "peak_rss_mb": C.peak_rss_mb()}


def measure(name, n):
    if name == "deeplake":
        python, env = C.deeplake_python()
        if python is None:
            return None
        return C.run_row([python, "-c", _DEEPLAKE, bench_loader.dataset(n), str(BATCH)], name, env)
    return C.run_config(__file__, n, name)


def main(argv=None):
    args = C.corpus_args(argv, __doc__, run_config, bench_loader.dataset, rounds=2, what="as a dataset")
    if args is None:
        return 0
    n = args.n
    best = {}
    for r in range(args.rounds):
        for name in ROWS:
            res = measure(name, n)
            if res is None:
                print(f"  {name:<11} skipped: no deeplake 3.9.52 side venv (run the dl3 tests once to build it)")
                continue
            print(f"  round {r + 1} {name:<11} {res['rate']:8.1f} images/s   first batch {res['first_batch_s']:6.2f} s"
                  f"   peak RSS {res['peak_rss_mb']:6.0f} MiB", flush=True)
            if name not in best or res["rate"] > best[name]["rate"]:
                best[name] = res
    print(f"one epoch of {n} images, batch {BATCH}, num_workers=2, shuffle=True (best of {args.rounds}):")
    for name in ROWS:
        if name in best:
            print(f"  {name:<11} {best[name]['rate']:8.1f} images/s")
    r = best["ds_pytorch"]["rate"] / best["chain"]["rate"]
    print(f"  ratio ds_pytorch / chain:    {r:5.2f}x   target >= 0.90x  {'OK' if r >= 0.9 else 'MISSED'}")
    if "deeplake" in best:
        r = best["ds_pytorch"]["rate"] / best["deeplake"]["rate"]
        print(f"  ratio ds_pytorch / deeplake: {r:5.2f}x   target >= 2.00x  {'OK' if r >= 2 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
