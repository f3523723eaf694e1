"""The Deep Lake docs' torchvision Compose through ``ds.pytorch()``: fused vs per sample, against a
torch DataLoader + PIL with the same Compose and against our own fused RandomResizedCrop chain.

One epoch of bench_loader's corpus (``--n`` JPEGs 500x375 q90 + labels, default 2,000: the issue's
corpus), batch 64, to torch tensors; each row in its own process, the rows interleaved over
``--rounds`` rounds (best of each kept), timed from building the loader to the end of the epoch:

  torch_dl_pil   torch.utils.data.DataLoader(num_workers=2) over the JPEG files: PIL open + convert,
                 then the Compose without its ToPILImage (the image already is one)
  ours_unfused   ds.pytorch(transform={"images": tv, "labels": None}, num_workers=2, batch_size=64)
                 with DEEPLAKE_LOADER_FUSE_TORCHVISION=0: torchvision per sample, as before fusion
  ours_fused     the same with fusion (the default): native decode + crop + resize + flip +
                 normalise into the (64, 3, 224, 224) float32 batch
  ours_rrc       our own fused chain: ds.dataloader().transform({"images": RandomResizedCrop(224,
                 hflip=True), "labels": None}).batch(64).pytorch(num_threads=2) (uint8 HWC)

where tv = Compose([ToPILImage(), RandomResizedCrop(224), RandomHorizontalFlip(), ToTensor(),
Normalize(mean, std)]). Targets (issue 20): ours_fused >= 3x torch_dl_pil, ours_fused >= 0.8x
ours_rrc; ours_unfused / torch_dl_pil is printed too (the workers' half of the issue, >= 1.0x).

torchvision does not import beside the main venv's torch, so the script runs itself in the tests'
torchvision side venv (tests/common/tvenv.py: ~/.cache/deeplake_loader/venv-tv-...) with this
checkout on PYTHONPATH; when that venv is not there it says how to build it and exits.

Usage: python3 bench/bench_torchvision.py [--n 2000] [--quick] [--rounds 2]
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _common as C  # noqa: E402
import bench_loader  # noqa: E402  (its corpus and dataset: the same files every loader bench reads)

BATCH = 64
ROWS = ["torch_dl_pil", "ours_unfused", "ours_fused", "ours_rrc"]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def compose():
    import torchvision.transforms as T

    return T.Compose([T.ToPILImage(), T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
                      T.Normalize(MEAN, STD)])


class FolderDataset:
    """What a torch user writes for a folder of JPEGs with a torchvision Compose."""

    def __init__(self, files, tv):
        self.files, self.tv = files, tv

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.files[i]) as im:
            return self.tv(im.convert("RGB")), i % 10


def run_config(name, n):
    C.warm_allocator()
    import torch
    import torchvision.transforms as T

    torch.set_num_threads(1)
    files = bench_loader.corpus_files(n) if name == "torch_dl_pil" else None
    path = bench_loader.dataset(n) if name != "torch_dl_pil" else None
    if name == "ours_unfused":
        os.environ["DEEPLAKE_LOADER_FUSE_TORCHVISION"] = "0"
    t0 = time.perf_counter()
    if name == "torch_dl_pil":
        loader = torch.utils.data.DataLoader(FolderDataset(files, T.Compose(compose().transforms[1:])),
                                             batch_size=BATCH, num_workers=2)
    else:
        import deeplake_loader as dl
        from deeplake_loader.transforms import RandomResizedCrop

        ds = dl.load(path, read_only=True)
        if name == "ours_rrc":
            loader = (ds.dataloader().transform({"images": RandomResizedCrop(224, hflip=True), "labels": None})
                      .batch(BATCH).pytorch(num_threads=2))
        else:
            loader = ds.pytorch(transform={"images": compose(), "labels": None}, num_workers=2, batch_size=BATCH)
    count, first, fused = 0, None, None
    for batch in loader:
        if first is None:
            first = time.perf_counter() - t0
        labels = batch[1] if isinstance(batch, (list, tuple)) else batch["labels"]
        count += len(labels)
    dt = time.perf_counter() - t0
    if name != "torch_dl_pil":
        fused = loader._get_pipeline().columns["images"].fused is not None
        loader.close()
    return {"rate": count / dt, "count": count, "seconds": dt, "first_batch_s": first, "fused": fused,
            "peak_rss_mb": C.peak_rss_mb()}


def main(argv=None):
    try:
        import torchvision  # noqa: F401
    except ImportError:
        python, env = C.torchvision_python()
        if python is None:
            print("torchvision does not import here and its side venv is not built: run the tests once "
                  "(pytest tests/integration/test_torchvision_fusion.py) or\n  python -c 'from tests.common "
                  "import tvenv; tvenv.tv_python()'  (from the repository root)")
            return 0
        env.pop("VIRTUAL_ENV", None)
        return subprocess.call([python, os.path.abspath(__file__), *(sys.argv[1:] if argv is None else argv)], env=env)
    args = C.corpus_args(argv, __doc__, run_config, bench_loader.dataset, rounds=2, default_n=2000)
    if args is None:
        return 0
    import torch
    import torchvision

    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    best = {}
    for rnd in range(args.rounds):
        for name in ROWS:
            r = C.run_config(__file__, args.n, name)
            if name not in best or r["rate"] > best[name]["rate"]:
                best[name] = r
            print(f"  round {rnd + 1} {name:<13} {r['rate']:8.1f} images/s   first batch {r['first_batch_s']:6.3f} s"
                  f"   peak RSS {r['peak_rss_mb']:6.0f} MiB" + ("" if r["fused"] is None else f"   fused={r['fused']}"),
                  flush=True)
    print(f"best of {args.rounds} round(s), one epoch of {args.n} images, batch {BATCH} (load {C.machine_info().split('load ')[-1]}):")
    rows = [(name, best[name]["rate"]) for name in ROWS]
    C.print_table(rows, ratios=[("ours_fused", "torch_dl_pil", 3.0), ("ours_fused", "ours_rrc", 0.8),
                                ("ours_unfused", "torch_dl_pil", 1.0), ("ours_fused", "ours_unfused", None)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
