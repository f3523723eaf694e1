"""The real `deeplake-loader` command in a subprocess: an ingest SIGKILLed mid-way and run again
stores every file once, in order; `bench` prints both loaders' rates, memory and the ratio."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import deeplake_loader as dl

ROOT = Path(__file__).resolve().parents[2]
N = 400


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT))


def cli(*args, **kw):
    return [sys.executable, "-m", "deeplake_loader", *map(str, args)]


def make_tree(root, n, seed):
    """n distinct small JPEGs in 3 class folders; returns the planned order [(path, label)]."""
    rng = np.random.default_rng(seed)
    names = ["ant", "bee", "cow"]
    for name in names:
        (root / name).mkdir(parents=True)
    for i in range(n):
        arr = rng.integers(0, 256, (12 + i % 5, 16, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / names[i % 3] / f"{i:04d}.jpg", quality=90)
    return [(p, label) for label, name in enumerate(names) for p in sorted((root / name).iterdir())]


def stored(ds: Path) -> int:
    """Rows the images tensor has committed: its tensor_meta.json's length (written by rename, so
    never half there; 0 before the tensor exists)."""
    try:
        return int(json.loads((ds / "images" / "tensor_meta.json").read_text())["length"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def start_and_kill(tmp_path, tree, ds, run, after):
    """Start an ingest, SIGKILL it once the dataset holds more than ``after`` images; returns how
    many it holds then. (Polled on the dataset itself, every few ms: the progress bar redraws only
    every 0.5 s, in which a fast machine can ingest the rest and leave nothing to interrupt.)"""
    err = tmp_path / f"stderr{run}"
    with open(err, "w") as fh:
        proc = subprocess.Popen(cli("ingest", tree, ds, "--batch", "1"), stdout=subprocess.DEVNULL, stderr=fh,
                                env=_env(), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        while stored(ds) <= after:
            assert proc.poll() is None, f"run {run} ended before it could be killed:\n{err.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return stored(ds)


def test_ingest_killed_twice_then_finished_stores_each_file_once(tmp_path):
    planned = make_tree(tmp_path / "tree", N, seed=1401)
    ds_path = tmp_path / "ds"
    first = start_and_kill(tmp_path, tmp_path / "tree", ds_path, 1, after=0)
    assert 0 < first < N
    second = start_and_kill(tmp_path, tmp_path / "tree", ds_path, 2, after=first + 5)
    assert first < second < N
    out = subprocess.run(cli("ingest", tmp_path / "tree", ds_path, "--batch", "7"), capture_output=True, text=True,
                         env=_env(), cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr
    done = int(re.search(r"(\d+) of 400 images already stored, resuming", out.stdout).group(1))
    assert second <= done < N
    assert f"{N} images in 3 classes" in out.stdout
    ds = dl.load(str(ds_path), read_only=True)
    assert len(ds.images) == len(ds.labels) == N
    assert ds.labels.numpy().reshape(-1).tolist() == [label for _, label in planned]
    stored = ds.images.reader.stored_bytes(np.arange(N))
    for row, (path, _) in enumerate(planned):
        assert bytes(stored[row]) == path.read_bytes(), f"row {row} is not {path.name}"


def test_bench_prints_both_loaders_and_the_ratio(tmp_path):
    make_tree(tmp_path / "tree", 48, seed=1402)
    subprocess.run(cli("ingest", tmp_path / "tree", tmp_path / "ds", "--no-progress"), check=True, env=_env(),
                   capture_output=True, timeout=300)
    for extra in (["--transform", "rrc224", "--workers", "1"], ["--workers", "0", "--limit", "20"]):
        out = subprocess.run(cli("bench", tmp_path / "ds", "--batch-size", "8", *extra), capture_output=True,
                             text=True, env=_env(), cwd=tmp_path, timeout=600)
        assert out.returncode == 0, out.stderr
        n = 20 if "--limit" in extra else 48
        assert f"tensor 'images' (jpeg images, shapes (None, 16, 3)), {n} samples, batch 8" in out.stdout
        ours = re.search(r"deeplake_loader \(num_threads=\d\)\s+([\d.]+) images/s\s+([\d.]+) s\s+peak RSS (\d+) MiB",
                         out.stdout)
        torch = re.search(r"torch DataLoader \+ Pillow \(num_workers=\d\)\s+([\d.]+) images/s\s+([\d.]+) s\s+"
                          r"peak RSS (\d+) MiB", out.stdout)
        assert ours and torch, out.stdout
        ratio = float(re.search(r"ratio deeplake_loader / torch DataLoader \+ Pillow: ([\d.]+)x", out.stdout).group(1))
        assert ratio == pytest.approx(float(torch.group(2)) / float(ours.group(2)), rel=0.05, abs=0.01)
        assert float(ours.group(1)) == pytest.approx(n / float(ours.group(2)), rel=0.05)
        if "--workers" in extra and "1" in extra:
            assert "(+ 1 workers, largest" in out.stdout


def test_bench_names_what_it_cannot_compare(tmp_path):
    ds = dl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", dtype="int32")
    ds.x.extend([np.arange(3, dtype=np.int32)])
    ds.create_tensor("raw", htype="image", dtype="uint8")
    ds.raw.extend([np.zeros((4, 4, 3), np.uint8)])
    out = subprocess.run(cli("bench", tmp_path / "ds"), capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 1 and "tensor 'raw' stores no image files" in out.stderr
    out = subprocess.run(cli("bench", tmp_path / "ds", "--tensor", "nope"), capture_output=True, text=True,
                         env=_env(), timeout=300)
    assert out.returncode == 1 and "has no tensor 'nope'" in out.stderr
