"""Remote datasets, offline: epochs of 5,000 JPEGs (500x375 q90) + labels, batch 64,
num_threads=2, read from a local folder, from a local S3 server (moto, loopback) and from the same
server over a slow link (tests/common/slowlink.py: 30 ms per request, 25 MB/s per connection).

Rows, each in its own process (moto and the proxy run in processes of their own too):
  local_tobytes / local_decode   the dataset on local disk (warm page cache): decode_method tobytes,
                                 and JPEG decode to arrays
  s3_tobytes / s3_decode         s3:// on moto, straight
  slow_tobytes / slow_decode     s3:// through the slow link
  slow_tobytes_w1                the same with fetch_window=1 (one chunk read at a time)
  slow_fill                      an epoch over the slow link with local_cache_size set (fills the cache)
  cached_tobytes / cached_decode a fresh process after that epoch, same link, same cache
  s3_raw / slow_raw              no loader: every chunk file of the dataset read 32 at a time
                                 (the storage's read_blob, after listing the folders), whole and
                                 as 2 range requests each, the faster counting - what the server
                                 and the link deliver on this machine, the ceiling of the tobytes
                                 rows; counted as the dataset's images over the read's time
Every loader row runs EPOCHS epochs in its process and reports the best (slow_fill one): the first
epoch also opens the dataset's tensors and starts the process's threads, so a one-epoch remote row
against a best-of-several local one would compare a cold start with a steady state. Remote rows load
with memory_cache_size=0, so every epoch reads the link (or the disk cache) again, as an epoch over a
dataset larger than memory does; the first epoch's rate is printed too, and the targets' ratios
are also given for first epochs alone.
Ratios against the targets of issue 13, two ways: the best rate of each row over the rounds
(the least disturbed run of each), and the median over rounds of the ratio within a round (its
rows ran back to back, under the same conditions); the main thread's CPU µs per batch
(time.thread_time) and the whole process's (time.process_time) in the local tobytes row.

Usage: python3 bench/bench_remote.py [--n 5000] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import _common as C  # noqa: E402

BATCH = 64
LATENCY, BANDWIDTH = 0.03, 25e6
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
CONFIGS = ["local_tobytes", "local_decode", "s3_tobytes", "s3_decode", "slow_tobytes", "slow_decode",
           "slow_tobytes_w1", "slow_fill", "cached_tobytes", "cached_decode", "s3_raw", "slow_raw"]
RAW_THREADS = 32
EPOCHS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port, proc, what):
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


def start_moto():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, proc, "moto server")
    return proc, f"http://127.0.0.1:{port}"


def start_link(upstream):
    proc = subprocess.Popen([sys.executable, "-m", "tests.common.slowlink", "--upstream", upstream, "--latency",
                             str(LATENCY), "--bandwidth", str(BANDWIDTH)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(HERE))
    url = proc.stdout.readline().strip()
    if not url:
        raise RuntimeError("slow link did not start")
    return proc, url


def upload(local_path, endpoint, url):
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, **CREDS)
    bucket, prefix = url[len("s3://"):].split("/", 1)
    s3.create_bucket(Bucket=bucket)
    for dirpath, _, files in os.walk(local_path):
        for f in files:
            full = os.path.join(dirpath, f)
            key = f"{prefix}/{os.path.relpath(full, local_path)}"
            s3.upload_file(full, bucket, key)


def run_config(name, path, endpoint, cache_dir):
    import torch

    import deeplake_loader as dl
    import deeplake_loader.pipeline as pipeline

    windows = []
    real_window = pipeline.ChunkWindow

    def recorded(*args, **kwargs):  # keeps each epoch's fetch window, to report how wide it ran
        windows.append(real_window(*args, **kwargs))
        return windows[-1]

    pipeline.ChunkWindow = recorded
    torch.set_num_threads(1)
    C.warm_allocator()
    kw = {}
    if path.startswith("s3://"):
        kw["creds"] = {**CREDS, "endpoint_url": endpoint}
        kw["memory_cache_size"] = 0  # a second epoch reads the link (or the disk cache) again
    if name.startswith(("slow_fill", "cached")):
        os.environ["DEEPLAKE_LOADER_CACHE_DIR"] = cache_dir
        kw["local_cache_size"] = 100_000
    if name.endswith("_w1"):
        kw["fetch_window"] = 1
    ds = dl.load(path, read_only=True, **kw)
    if name.endswith("_raw"):
        return raw_read(ds)
    method = {"images": "tobytes"} if "tobytes" in name or name == "slow_fill" else None
    loader = ds.dataloader().batch(BATCH).pytorch(num_threads=2, decode_method=method)
    epochs = 1 if name == "slow_fill" else EPOCHS
    rates, main_us, proc_us, first = [], [], [], None
    for _ in range(epochs):
        count = batches = 0
        t0, th0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
        for batch in loader:
            if first is None:
                first = time.perf_counter() - t0
            count += len(batch["labels"])
            batches += 1
        dt = time.perf_counter() - t0
        rates.append(count / dt)
        main_us.append((time.thread_time() - th0) / batches * 1e6)
        proc_us.append((time.process_time() - p0) / batches * 1e6)
    loader.close()
    best = max(range(epochs), key=lambda i: rates[i])
    return {"rate": rates[best], "first_rate": rates[0], "count": count, "main_us_per_batch": main_us[best],
            "process_us_per_batch": proc_us[best], "peak_rss_mb": C.peak_rss_mb(), "first_batch_s": first,
            "link": repr(ds.storage.stats) if ds.storage.stats is not None else "",
            "window": max(w.peak_in_flight for w in windows)}


def raw_read(ds):
    """Every chunk file of ``ds`` read RAW_THREADS at a time with no loader, whole and then as 2 range
    requests each: the row's result, from the faster."""
    from concurrent.futures import ThreadPoolExecutor

    store = ds.storage
    keys = [f"{t}/chunks/{name}" for t in ("images", "labels") for name in store.listing(f"{t}/chunks")]
    times = {}
    for parts in (1, 2):
        t0 = time.perf_counter()
        with ThreadPoolExecutor(RAW_THREADS) as ex:
            nbytes = sum(len(b) for b in ex.map(lambda k: store.read_blob(k, parts=parts), keys))
        times[parts] = time.perf_counter() - t0
    parts = min(times, key=times.get)
    return {"rate": len(ds) / times[parts], "first_rate": len(ds) / times[parts], "count": len(ds),
            "main_us_per_batch": 0.0, "process_us_per_batch": 0.0, "peak_rss_mb": C.peak_rss_mb(),
            "first_batch_s": 0.0, "window": min(RAW_THREADS, len(keys)),
            "link": f"{nbytes / 1e6:.0f} MB read: whole {times[1]:.2f} s, 2 ranges each {times[2]:.2f} s"}


def _cpu(procs) -> float:
    import psutil

    total = 0.0
    for p in procs:
        try:
            t = psutil.Process(p.pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def run_row(name, path, endpoint, cache_dir, servers=()):
    """One row in a process of its own; its result dict (None if it failed). ``servers``: the moto
    and proxy processes, whose CPU time during the row is reported (they share this machine)."""
    before = [_cpu([p]) for p in servers]
    out = subprocess.run([sys.executable, __file__, "--config", name, "--path", path, "--endpoint", endpoint,
                          "--cache-dir", cache_dir], capture_output=True, text=True, cwd=os.path.dirname(HERE))
    if out.returncode:
        print(f"{name} failed:\n{out.stderr[-3000:]}")
        return None
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["server_cpu_s"] = [_cpu([p]) - b for p, b in zip(servers, before)]
    print(f"  {name:<16} {r['rate']:9.1f} images/s (first epoch {r['first_rate']:8.1f})   "
          f"main thread {r['main_us_per_batch']:6.0f} µs/batch   "
          f"process {r['process_us_per_batch']:6.0f} µs/batch   first batch {r['first_batch_s']:5.2f} s   "
          f"CPU moto {r['server_cpu_s'][0]:4.2f} s proxy {r['server_cpu_s'][1]:4.2f} s   "
          f"reads in flight <= {r['window']:2d}   "
          f"peak RSS {r['peak_rss_mb']:4.0f} MiB  {r['link']}", flush=True)
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--quick", action="store_true", help="1,000 images")
    ap.add_argument("--only", help="comma-separated rows to run")
    ap.add_argument("--rounds", type=int, default=2, help="run every row this many times, interleaved; "
                    "the best of each row counts (this machine is shared: the best is the least disturbed)")
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    ap.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.config:
        print(json.dumps(run_config(args.config, args.path, args.endpoint, args.cache_dir)))
        return 0
    n = 1000 if args.quick else args.n
    import bench_loader

    print(C.machine_info())
    print(f"preparing {n} JPEGs (500x375 q90) as a local dataset ...", flush=True)
    local = bench_loader.dataset(n)
    moto, endpoint = start_moto()
    link = None
    cache_dir = tempfile.mkdtemp(prefix="bench_remote_cache_")
    try:
        url = "s3://bench/remote_ds"
        t = time.perf_counter()
        upload(local, endpoint, url)
        print(f"uploaded to moto in {time.perf_counter() - t:.1f} s", flush=True)
        link, slow = start_link(endpoint)
        where = {"local": (local, endpoint), "s3": (url, endpoint), "slow": (url, slow), "cached": (url, slow)}
        configs = CONFIGS if not args.only else [c for c in CONFIGS if c in args.only.split(",")]
        rounds = []
        for round_ in range(args.rounds):
            rounds.append({})
            print(f"round {round_ + 1} of {args.rounds}", flush=True)
            for name in configs:
                if name == "slow_fill":  # every round fills an empty cache (else it would read the last round's)
                    shutil.rmtree(cache_dir, ignore_errors=True)
                    os.makedirs(cache_dir)
                r = run_row(name, *where[name.split("_")[0]], cache_dir, servers=[moto, link])
                if r is None:
                    return 1
                rounds[-1][name] = r
    finally:
        if link is not None:
            link.stdin.close()
            link.wait(10)
        moto.terminate()
        moto.wait(10)
        shutil.rmtree(cache_dir, ignore_errors=True)
    print(f"epochs of {n} images, batch {BATCH}, num_threads=2 (ratios within this run):")
    for num, den, target in [("local_tobytes", "local_decode", 30.0), ("s3_tobytes", "local_tobytes", None),
                             ("slow_tobytes", "s3_tobytes", 0.7), ("slow_raw", "s3_raw", None),
                             ("slow_raw", "s3_tobytes", None), ("slow_tobytes", "slow_raw", None),
                             ("slow_tobytes", "slow_tobytes_w1", None),
                             ("slow_decode", "local_decode", 0.85), ("cached_decode", "local_decode", 0.9),
                             ("cached_tobytes", "local_tobytes", None)]:
        for key in ("rate", "first_rate") if target else ("rate",):
            line = _ratio(rounds, num, den, key, target)
            if line:
                print(f"  ratio {num} / {den}{'' if key == 'rate' else ', first epochs'}: {line}")
    return 0


def _ratio(rounds, num, den, key, target):
    """'best/best R  per round ... (median M)  target ...' of rows num/den by ``key`` over the rounds."""
    both = [x for x in rounds if num in x and den in x]
    if not both:
        return None
    r = max(x[num][key] for x in both) / max(x[den][key] for x in both)
    paired = sorted(x[num][key] / x[den][key] for x in both)
    med = paired[len(paired) // 2] if len(paired) % 2 else sum(paired[len(paired) // 2 - 1:][:2]) / 2
    tgt = "" if target is None else (f"   target >= {target:.2f}x  best/best {'OK' if r >= target else 'MISSED'}, "
                                     f"median of rounds {'OK' if med >= target else 'MISSED'}")
    return f"best/best {r:6.2f}x   per round {' '.join(f'{x:.2f}' for x in paired)} (median {med:.2f}x){tgt}"


if __name__ == "__main__":
    raise SystemExit(main())
