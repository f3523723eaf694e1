"""Shared helpers for every benchmark script in bench/ (stable API: other scripts import it).

* ``DATA_DIR``                    bench/_data/ (gitignored), where generated corpora are cached.
* ``natural_image(h, w, seed)``   a smooth, photo-like uint8 RGB array (gradients + blobs + noise),
                                  so JPEG sizes and decode costs resemble real photos.
* ``jpeg_corpus(n, ...)``         list of JPEG ``bytes``, generated once with Pillow, cached on disk.
* ``png_corpus(n, ...)``          same for PNG.
* ``warm_allocator()``            make glibc's malloc reuse freed large blocks (fair baselines).
* ``time_it(fn, warmup, repeat)`` warm-up calls, then the median wall time of ``repeat`` calls.
* ``peak_rss_mb()``               peak resident set size of this process (MiB).
* ``machine_info()``              one line: CPU model, cores, Python, numpy, Pillow versions.
* ``print_table(rows, ...)``      aligned table of ``(name, items_per_s)`` with ratios to baselines.
* ``run_config(script, n, name)``  run ``script --n n --config name`` in its own process, return
                                  the JSON it prints last (a dict), or raise with its stderr.

Benchmarks never assert on time; they print. Run them on a quiet machine.
"""
from __future__ import annotations

import os

# OpenBLAS worker threads spin on this 2-core machine and steal time from the code under test;
# nothing here uses BLAS. (Effective only when _common is imported before numpy.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import io
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "_data"


def natural_image(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """A deterministic photo-like image: smooth gradients, soft blobs and mild noise (uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, channels), np.float32)
    for c in range(channels):
        a, b, ph = rng.uniform(0.005, 0.03, 2).tolist() + [rng.uniform(0, 6.28)]
        v = 128 + 60 * np.sin(xx * a + ph) * np.cos(yy * b)
        for _ in range(4):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            r = rng.uniform(0.05, 0.3) * max(h, w)
            v += rng.uniform(-70, 70) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        v += rng.normal(0, 6, (h, w))
        img[..., c] = v
    return np.clip(img, 0, 255).astype(np.uint8)


def _corpus(kind: str, n: int, height: int, width: int, mode: str, save_kw: dict) -> list[bytes]:
    from PIL import Image

    tag = "_".join(f"{k}{v}" for k, v in sorted(save_kw.items()))
    folder = DATA_DIR / f"{kind}_{height}x{width}_{mode}_{tag}"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = folder / f"{i:05d}.{kind}"
        if not path.exists():
            arr = natural_image(height, width, seed=i, channels=3)
            im = Image.fromarray(arr, "RGB").convert(mode)
            bio = io.BytesIO()
            im.save(bio, format="JPEG" if kind == "jpg" else "PNG", **save_kw)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(bio.getvalue())
            os.replace(tmp, path)
        out.append(path.read_bytes())
    return out


def jpeg_corpus(n: int = 64, height: int = 375, width: int = 500, quality: int = 90,
                mode: str = "RGB", subsampling: int = 2) -> list[bytes]:
    """``n`` distinct JPEG files (default: 500x375 RGB, quality 90, 4:2:0), cached in DATA_DIR."""
    return _corpus("jpg", n, height, width, mode, {"quality": quality, "subsampling": subsampling})


def png_corpus(n: int = 32, height: int = 375, width: int = 500, mode: str = "RGB",
               compress_level: int = 6) -> list[bytes]:
    """``n`` distinct PNG files (default 500x375 RGB, zlib level 6), cached in DATA_DIR."""
    return _corpus("png", n, height, width, mode, {"compress_level": compress_level})


def warm_allocator(nbytes: int = 16 << 20) -> None:
    """Allocate and free one large block so that glibc raises its dynamic mmap threshold.

    Without this, every per-image buffer above 128 KiB (e.g. Pillow's decoded image) is a fresh
    mmap whose pages fault in one by one, and a baseline's speed depends on whatever the process
    allocated earlier (measured: Pillow JPEG decode 500/s cold vs 1270/s warm). Call it once
    at the start of a benchmark so every row sees the same, fair allocator state."""
    block = np.ones(nbytes, np.uint8)
    del block


def time_it(fn: Callable[[], object], warmup: int = 1, repeat: int = 5) -> float:
    """Call ``fn`` ``warmup`` times untimed, then return the median seconds of ``repeat`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / (1024.0 * 1024.0)


def machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    parts = [cpu, f"{os.cpu_count()} cores", f"Python {platform.python_version()}",
             f"numpy {np.__version__}"]
    try:
        import PIL

        parts.append(f"Pillow {PIL.__version__}")
    except ImportError:
        pass
    try:
        parts.append(f"load {os.getloadavg()[0]:.2f}")
    except OSError:
        pass
    return ", ".join(parts)


def print_table(rows: Sequence[tuple[str, float]], unit: str = "images/s",
                ratios: Iterable[tuple[str, str, float | None]] = (), title: str | None = None) -> None:
    """Print ``rows`` of ``(name, rate)`` aligned, then each ratio ``(num, den, target)``:
    ``rate[num] / rate[den]`` with the target (if any) and whether it was met."""
    rates = dict(rows)
    if title:
        print(title)
    width = max([len(n) for n, _ in rows] + [10])
    for name, rate in rows:
        print(f"  {name:<{width}}  {rate:12.1f} {unit}")
    for num, den, target in ratios:
        if num not in rates or den not in rates or rates[den] <= 0:
            continue
        r = rates[num] / rates[den]
        tgt = "" if target is None else f"   target >= {target:.2f}x  {'OK' if r >= target else 'MISSED'}"
        print(f"  ratio {num} / {den}: {r:6.2f}x{tgt}")
    print(f"  peak RSS: {peak_rss_mb():.0f} MiB")


def run_row(cmd, name: str, env=None) -> dict:
    """Run one benchmark row's command (its own process, so its peak RSS and thread pools are its
    own); it prints its result as JSON on its last line."""
    import json
    import subprocess

    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_config(script: str, n: int, name: str) -> dict:
    """One benchmark row of ``script`` in its own process: ``python script --n n --config name``."""
    return run_row([sys.executable, script, "--n", str(n), "--config", name], name)


def _repo_tests():
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)


def deeplake_python():
    """(interpreter, env) of the tests' deeplake 3.9.52 side venv (tests/common/dl3.py), or (None,
    None) when it has not been built (benches never build it)."""
    _repo_tests()
    try:
        from tests.common import dl3
    except ImportError:
        return None, None
    return dl3.VENV.ready()


DL3_TV_VENV = Path.home() / ".cache" / "deeplake_loader" / "venv-dl3-tv"


def deeplake_torchvision_python():
    """(interpreter, env) with deeplake 3.9.52 and real torchvision, for the benches' deeplake rows
    with a torchvision transform: $DEEPLAKE_LOADER_DL3_TV_PYTHON, else ~/.cache/deeplake_loader/
    venv-dl3-tv (built by hand, bench/README.md); (None, None) without one."""
    python = os.environ.get("DEEPLAKE_LOADER_DL3_TV_PYTHON") or str(DL3_TV_VENV / "bin" / "python")
    if not os.path.exists(python):
        return None, None
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["BUGGER_OFF"] = "true"  # deeplake's own switch for its telemetry
    return python, env


def torchvision_python():
    """(interpreter, env) of the tests' torch 2.14.1 + torchvision side venv (tests/common/tvenv.py)
    with this checkout and bench/ on PYTHONPATH, or (None, None) when it has not been built."""
    _repo_tests()
    try:
        from tests.common import tvenv
    except ImportError:
        return None, None
    python, env = tvenv.VENV.ready()
    if python is None:
        return None, None
    here = str(Path(__file__).resolve().parent)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(here).parent), here])
    return python, env


def corpus_args(argv, doc: str, run_config, prepare, *, quick_n: int = 500, rounds: int | None = None,
                what: str = "as a folder and as a dataset", default_n: int = 5000):
    """The common start of the benches over bench_loader's corpus (JPEGs 500x375 q90 + labels):
    parses ``--n`` (default ``default_n``), ``--quick`` (``quick_n`` images; one round), ``--rounds`` (when ``rounds`` is
    given) and the hidden ``--config``. With ``--config`` it runs that one row (this is the row's
    own process, see ``run_config``), prints its JSON and returns None; otherwise it prints the
    machine, prepares the data with ``prepare(n)`` and returns the arguments (``args.n`` final)."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--n", type=int, default=default_n)
    ap.add_argument("--quick", action="store_true", help=f"{quick_n} images")
    if rounds is not None:
        ap.add_argument("--rounds", type=int, default=rounds, help="interleaved rounds; the best of each row is kept")
    ap.add_argument("--config", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.n = quick_n
        if rounds is not None:
            args.rounds = 1
    if args.config:
        print(json.dumps(run_config(args.config, args.n)))
        return None
    print(machine_info())
    print(f"preparing {args.n} JPEGs (500x375 q90) {what} ...", flush=True)
    prepare(args.n)
    return args
