"""A video epoch: frames/s of our loaders against PyAV decoding the same files in a loop and against
real deeplake 3.9.52's ``ds.pytorch()``.

The data: ``--n`` h264 mp4 files (``--frames`` frames of 320x240 at 25 fps, PyAV's libx264 defaults,
generated once into bench/.data), appended with ``deeplake_loader.read`` to one ``video`` tensor
(deeplake reads that dataset as its own: tests/integration/test_dl3_media.py). Each row runs in its
own process, the rows interleaved over ``--rounds`` rounds (best of each row kept):

  pyav_loop      PyAV, one file after the other: open, decode every frame to RGB (the floor)
  chain          ours: ds.dataloader().batch(2).pytorch(num_threads=2)
  ds_pytorch     ours: ds.pytorch(batch_size=2, num_workers=2)
  deeplake       deeplake 3.9.52's ds.pytorch(batch_size=2, num_workers=2), in the side venv the
                 tests build (tests/common/dl3.py; skipped when it is not there), on the same folder

Timed from opening the dataset to the end of the epoch. Frames counted are the frames delivered.

Usage: python3 bench/bench_video.py [--n 48] [--frames 64] [--rounds 2] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import _common as C  # noqa: E402

ROWS = ["pyav_loop", "chain", "ds_pytorch", "deeplake"]
BATCH = 2

_DEEPLAKE = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import deeplake
t0 = time.perf_counter()
ds = deeplake.load(sys.argv[1], read_only=True, verbose=False)
frames = 0
for batch in ds.pytorch(tensors=["videos"], batch_size=int(sys.argv[2]), num_workers=2):
    frames += int(batch["videos"].shape[0] * batch["videos"].shape[1])
dt = time.perf_counter() - t0
import resource
print(json.dumps({"rate": frames / dt, "frames": frames, "seconds": dt,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def files(n, frames):
    from tests.common.media import make_video

    folder = C.DATA_DIR / f"videos_{n}x{frames}"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = folder / f"v{i:04d}.mp4"
        if not path.exists():
            tmp = folder / f".v{i:04d}.mp4"
            make_video(tmp, "mp4", "h264", frames=frames, w=320, h=240, fps=25)
            os.replace(tmp, path)
        out.append(str(path))
    return out


def dataset(n, frames):
    import deeplake_loader as dl

    path = str(C.DATA_DIR / f"video_ds_{n}x{frames}")
    if dl.exists(path) and len(dl.load(path, read_only=True)) == n:
        return path
    ds = dl.empty(path, overwrite=True)
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    ds.videos.extend([dl.read(f) for f in files(n, frames)])
    return path


def run_config(name, n, frames):
    C.warm_allocator()
    import av

    if name != "pyav_loop":
        import torch

        import deeplake_loader as dl

        torch.set_num_threads(1)
    t0 = time.perf_counter()  # imports done: every row is timed from opening its data
    count = 0
    if name == "pyav_loop":
        for f in files(n, frames):
            with av.open(f) as c:
                for frame in c.decode(video=0):
                    frame.to_ndarray(format="rgb24")
                    count += 1
    else:
        ds = dl.load(dataset(n, frames), read_only=True)
        if name == "chain":
            loader = ds.dataloader().batch(BATCH).pytorch(num_threads=2)
        else:
            loader = ds.pytorch(tensors=["videos"], batch_size=BATCH, num_workers=2)
        for batch in loader:
            v = batch["videos"]
            count += int(v.shape[0] * v.shape[1])
        loader.close()
    dt = time.perf_counter() - t0
    return {"rate": count / dt, "frames": count, "seconds": dt, "peak_rss_mb": C.peak_rss_mb()}


def measure(name, n, frames):
    if name == "deeplake":
        python, env = C.deeplake_python()
        if python is None:
            return None
        cmd = [python, "-c", _DEEPLAKE, dataset(n, frames), str(BATCH)]
    else:
        cmd, env = [sys.executable, __file__, "--n", str(n), "--frames", str(frames), "--config", name], None
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1][:200] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="12 videos of 32 frames, one round")
    ap.add_argument("--config", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.frames, args.rounds = 12, 32, 1
    if args.config:
        print(json.dumps(run_config(args.config, args.n, args.frames)))
        return 0
    print(C.machine_info())
    print(f"preparing {args.n} h264 videos of {args.frames} frames 320x240 and their dataset ...", flush=True)
    dataset(args.n, args.frames)
    best = {}
    for r in range(args.rounds):
        for name in ROWS:
            res = measure(name, args.n, args.frames)
            if res is None:
                print(f"  {name:<11} skipped: no deeplake 3.9.52 side venv (run the dl3 tests once to build it)")
                continue
            if "error" in res:
                print(f"  round {r + 1} {name:<11} failed: {res['error']}")
                continue
            print(f"  round {r + 1} {name:<11} {res['rate']:8.1f} frames/s  ({res['frames']} frames in "
                  f"{res['seconds']:.2f} s, peak RSS {res['peak_rss_mb']:.0f} MiB)", flush=True)
            if name not in best or res["rate"] > best[name]["rate"]:
                best[name] = res
    print(f"one epoch of {args.n} videos x {args.frames} frames (320x240 h264), best of {args.rounds}:")
    for name in ROWS:
        if name in best:
            print(f"  {name:<11} {best[name]['rate']:8.1f} frames/s")
    floor = best.get("pyav_loop")
    for name in ("chain", "ds_pytorch"):
        if name in best and floor:
            print(f"  ratio {name} / pyav_loop: {best[name]['rate'] / floor['rate']:5.2f}x")
        if name in best and "deeplake" in best:
            print(f"  ratio {name} / deeplake:  {best[name]['rate'] / best['deeplake']['rate']:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
