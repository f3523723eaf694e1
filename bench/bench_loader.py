"""End to end: one epoch of 5,000 JPEGs (500x375, q90) + labels, batch 64, to torch tensors.

Rows, each in its own process (so each peak RSS is its own), on the same files in one run:
  floor         Pillow decode, one image at a time, one thread (the single-thread floor)
  torch_dl      torch DataLoader + Pillow over a folder of the same files, num_workers=2
  torch_dl_rrc  the same + RandomResizedCrop(224) on the PIL image (Pillow crop + resize)
  ours          deeplake_loader, num_threads=2, no shuffle
  ours_shuffle  the same with .shuffle()
  ours_rrc      the same with the fused RandomResizedCrop(224) pushed into the decoder
and the time to the first batch with .shuffle().

Usage: python3 bench/bench_loader.py [--n 5000] [--quick]
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402

BATCH = 64
CONFIGS = ["floor", "torch_dl", "torch_dl_rrc", "ours", "ours_shuffle", "ours_rrc"]


def corpus_files(n):
    C.jpeg_corpus(n)  # generates and caches the files
    folder = next(p for p in C.DATA_DIR.iterdir() if p.name.startswith("jpg_375x500_RGB") and "quality90" in p.name)
    return [str(folder / f"{i:05d}.jpg") for i in range(n)]


def dataset(n):
    import deeplake_loader as dl
    from deeplake_loader.sample import Sample

    path = str(C.DATA_DIR / f"loader_ds_{n}")
    if dl.exists(path) and len(dl.load(path, read_only=True)) == n:
        return path
    files = corpus_files(n)
    ds = dl.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("labels", htype="class_label")
        for s in range(0, n, 500):
            part = files[s:s + 500]
            ds.extend({"images": [Sample(f) for f in part], "labels": [i % 10 for i in range(s, s + len(part))]})
    return path


class FolderDataset:
    """What a torch user writes for a folder of JPEGs."""

    def __init__(self, files, rrc=None):
        self.files, self.rrc = files, rrc

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        import torch
        from PIL import Image

        with Image.open(self.files[i]) as im:
            im = im.convert("RGB")
            if self.rrc is not None:
                im = self.rrc(im)
            arr = np.asarray(im)
        return torch.from_numpy(arr.copy()), i % 10


def run_config(name, n):
    C.warm_allocator()
    t0 = time.perf_counter()
    count = 0
    first = None
    if name == "floor":
        from PIL import Image

        for f in corpus_files(n):
            with Image.open(f) as im:
                count += np.asarray(im.convert("RGB")).shape[0] > 0
    elif name.startswith("torch_dl"):
        import torch

        torch.set_num_threads(1)
        from deeplake_loader.transforms import RandomResizedCrop

        files = corpus_files(n)
        t0 = time.perf_counter()
        loader = torch.utils.data.DataLoader(FolderDataset(files, RandomResizedCrop(224) if name.endswith("rrc") else None),
                                             batch_size=BATCH, num_workers=2)
        for images, labels in loader:
            count += len(labels)
    else:
        import torch

        import deeplake_loader as dl
        from deeplake_loader.transforms import RandomResizedCrop

        torch.set_num_threads(1)
        ds = dl.load(dataset(n), read_only=True)
        loader = ds.dataloader().batch(BATCH)
        if name == "ours_shuffle":
            loader = loader.shuffle()
        if name == "ours_rrc":
            loader = loader.transform({"images": RandomResizedCrop(224), "labels": None})
        loader = loader.pytorch(num_threads=2)
        t0 = time.perf_counter()
        for batch in loader:
            if first is None:
                first = time.perf_counter() - t0
            count += len(batch["labels"])
        loader.close()
    dt = time.perf_counter() - t0
    return {"rate": count / dt, "count": count, "seconds": dt, "first_batch_s": first, "peak_rss_mb": C.peak_rss_mb()}


def main(argv=None):
    args = C.corpus_args(argv, __doc__, run_config, dataset)
    if args is None:
        return 0
    n = args.n
    results = {}
    for name in CONFIGS:
        results[name] = C.run_config(__file__, n, name)
        r = results[name]
        extra = f", first batch {r['first_batch_s']:.3f} s" if r["first_batch_s"] is not None else ""
        print(f"  {name:<14} {r['rate']:9.1f} images/s   peak RSS {r['peak_rss_mb']:6.0f} MiB{extra}", flush=True)
    rates = {k: v["rate"] for k, v in results.items()}

    def ratio(a, b, target, better="higher"):
        r = rates[a] / rates[b]
        ok = r >= target if better == "higher" else r >= target
        print(f"  ratio {a} / {b}: {r:5.2f}x   target >= {target:.2f}x  {'OK' if ok else 'MISSED'}")

    print(f"one epoch of {n} images, batch {BATCH}:")
    ratio("ours", "floor", 2.0)
    ratio("ours", "torch_dl", 1.8)
    ratio("ours_shuffle", "ours", 0.9)
    ratio("ours_rrc", "torch_dl_rrc", 2.0)
    first = results["ours_shuffle"]["first_batch_s"]
    print(f"  time to first batch with shuffle: {first:.3f} s   target <= 1 s  {'OK' if first <= 1 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
