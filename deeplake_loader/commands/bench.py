"""`deeplake-loader bench PATH`: does the loader pay off on this dataset? One epoch of its images
through deeplake_loader beside torch DataLoader + Pillow, on the same samples.

Both sides read the same stored bytes (the JPEG/PNG files in the dataset's chunks) and produce torch
tensors, batch by batch:

* ours: ``ds.dataloader().batch(B)[.transform({tensor: RandomResizedCrop(224)})].pytorch(num_threads=N)``
  (the crop is fused into the decoder);
* torch: a ``torch.utils.data.Dataset`` whose ``__getitem__`` takes the sample's stored bytes and
  decodes them with Pillow (``Image.open(...).convert("RGB")``, then the same crop on the PIL image),
  in a ``DataLoader(batch_size=B, num_workers=N)``.

Each side runs in its own process, so each reports its own peak memory (the process, and its
largest worker process). The chunks the epoch reads are read once beforehand (local datasets), so
neither side pays for a cold disk the other does not. Images whose shapes differ (no transform)
are batched as lists on both sides.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time

from ..errors import DeepLakeLoaderError

TRANSFORMS = {"none": None, "rrc224": 224}


def _image_tensor(ds, name):
    if name is None:
        names = [n for n, t in ds.tensors.items() if t.htype.split("[")[-1].rstrip("]").startswith("image")]
        if not names:
            raise DeepLakeLoaderError(f"{ds.path} has no image tensor (tensors: {list(ds.tensors)}); name one with "
                                      "--tensor")
        name = names[0]
    if name not in ds.tensors:
        raise DeepLakeLoaderError(f"{ds.path} has no tensor '{name}' (tensors: {list(ds.tensors)})")
    reader = ds[name].reader
    if reader.sample_compression is None and not reader.is_link:
        raise DeepLakeLoaderError(
            f"tensor '{name}' stores no image files (sample_compression is None, chunk_compression "
            f"{reader.chunk_compression}): bench compares decoding stored JPEG/PNG bytes")
    return name


def _peak_mib():
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return self_kib / 1024, children_kib / 1024


def _as_lists(samples):
    """collate_fn for images whose shapes differ: each tensor's samples as a list (a sample
    iterates its values, as deeplake's: its names are its keys())."""
    return {k: [s[k] for s in samples] for k in samples[0].keys()}


class StoredImages:
    """What a torch user writes over a dataset's stored image bytes: decode with Pillow per sample."""

    def __init__(self, path, tensor, n, crop):
        self.path, self.tensor, self.n, self.crop = path, tensor, n, crop
        self._reader = None

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        import numpy as np
        import torch
        from PIL import Image

        if self._reader is None:  # opened in the worker process that uses it
            from .. import load

            self._reader = load(self.path, read_only=True)[self.tensor].reader
        data = bytes(self._reader.stored_bytes([i])[0])
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
            if self.crop is not None:
                im = self.crop(im)
            return torch.from_numpy(np.asarray(im).copy())


def _run_side(side, path, tensor, n, transform, workers, batch_size, stack):
    """One epoch in this process; returns its measurements."""
    import torch

    from .. import load
    from ..transforms import RandomResizedCrop

    torch.set_num_threads(1)
    size = TRANSFORMS[transform]
    count = 0
    if side == "ours":
        view = load(path, read_only=True)[:n]
        loader = view.dataloader().batch(batch_size)
        kwargs = {"num_threads": max(1, workers), "return_index": False}
        if size is not None:
            loader = loader.transform({tensor: RandomResizedCrop(size)})
        else:
            kwargs["tensors"] = [tensor]
        if not stack:
            kwargs["collate_fn"] = _as_lists
        loader = loader.pytorch(**kwargs)
        t0 = time.perf_counter()
        for batch in loader:
            count += len(batch[tensor])
        seconds = time.perf_counter() - t0
        loader.close()
    else:
        crop = RandomResizedCrop(size) if size is not None else None
        loader = torch.utils.data.DataLoader(StoredImages(path, tensor, n, crop), batch_size=batch_size,
                                             num_workers=workers, collate_fn=None if stack else list)
        t0 = time.perf_counter()
        for batch in loader:
            count += len(batch)
        seconds = time.perf_counter() - t0
    peak, children = _peak_mib()
    return {"count": count, "seconds": seconds, "peak_mib": peak, "workers_peak_mib": children}


def _warm(ds, tensor, n):
    """Read the chunks the epoch uses once (local datasets), so both sides start from the page cache."""
    if not os.path.isdir(str(ds.path)):
        return
    reader = ds[tensor].reader
    import numpy as np

    for name, _, _ in reader.chunk_plan(np.arange(n)):
        if name is not None:
            reader.storage.get(reader.vs.chunk_key(reader.key, name))


def run(path, *, tensor=None, transform="none", workers=2, batch_size=64, limit=None) -> int:
    from .. import load

    try:
        import torch  # noqa: F401
    except ImportError:
        raise DeepLakeLoaderError("bench compares with torch DataLoader: install torch first") from None
    if workers < 0 or batch_size < 1 or (limit is not None and limit < 1):
        raise DeepLakeLoaderError("--workers must be >= 0, --batch-size and --limit >= 1")
    ds = load(path, read_only=True)
    tensor = _image_tensor(ds, tensor)
    n = len(ds[tensor]) if limit is None else min(limit, len(ds[tensor]))
    if n == 0:
        raise DeepLakeLoaderError(f"tensor '{tensor}' of {path} is empty")
    shape = ds[tensor][:n].shape
    stack = TRANSFORMS[transform] is not None or None not in shape
    reader = ds[tensor].reader
    print(f"{path}: tensor '{tensor}' ({reader.sample_compression or 'linked'} images, shapes {shape[1:]}), "
          f"{n} samples, batch {batch_size}, transform {transform}, {workers} decode threads (ours) / "
          f"DataLoader workers (torch)", flush=True)
    _warm(ds, tensor, n)
    results = {}
    for side in ("ours", "torch"):
        cmd = [sys.executable, "-m", "deeplake_loader.commands.bench", side, str(path), tensor, str(n), transform,
               str(workers), str(batch_size), "1" if stack else "0"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            raise DeepLakeLoaderError(f"the {side} epoch failed:\n{out.stderr.strip()[-3000:]}")
        results[side] = r = json.loads(out.stdout.strip().splitlines()[-1])
        if r["count"] != n:
            raise DeepLakeLoaderError(f"the {side} epoch returned {r['count']} samples, expected {n}")
    labels = {"ours": f"deeplake_loader (num_threads={max(1, workers)})",
              "torch": f"torch DataLoader + Pillow (num_workers={workers})"}
    width = max(len(v) for v in labels.values())
    for side, r in results.items():
        mem = f"peak RSS {r['peak_mib']:.0f} MiB"
        if side == "torch" and workers:
            mem += f" (+ {workers} workers, largest {r['workers_peak_mib']:.0f} MiB)"
        print(f"  {labels[side]:<{width}}  {n / r['seconds']:9.1f} images/s  {r['seconds']:8.3f} s  {mem}")
    ratio = results["torch"]["seconds"] / results["ours"]["seconds"]
    print(f"  ratio deeplake_loader / torch DataLoader + Pillow: {ratio:.2f}x "
          f"({'faster' if ratio >= 1 else 'slower'}; one run each, on a machine that may be busy)")
    return 0


def _child(argv):
    side, path, tensor, n, transform, workers, batch_size, stack = argv
    result = _run_side(side, path, tensor, int(n), transform, int(workers), int(batch_size), stack == "1")
    print(json.dumps(result))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="dataset path or URL")
    p.add_argument("--tensor", help="image tensor to read (default: the first image tensor)")
    p.add_argument("--transform", choices=sorted(TRANSFORMS), default="none",
                   help="rrc224: RandomResizedCrop(224) on both sides (fused into our decoder)")
    p.add_argument("--workers", type=int, default=2,
                   help="our decode threads (at least 1) and torch DataLoader's worker processes (0: in its "
                        "main process); default 2")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--limit", type=int, help="only the first N samples (a quick look at a big dataset)")


if __name__ == "__main__":
    _child(sys.argv[1:])
