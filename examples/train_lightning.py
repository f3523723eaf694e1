"""Train the demo's small CNN with PyTorch Lightning, the loader handed to it by train_dataloader().

    python3 examples/train_lightning.py [--images 2000] [--epochs 2] [--devices 1] [--workdir ...]

The dataset is the one examples/demo.py generates (built here if missing). Lightning reads the
loader like any torch DataLoader; with ``--devices 2`` (DDP on CPU, gloo) it re-creates the loader
with a DistributedSampler, which our loader turns into its own sharding: each process trains on
its half of the rows. Written against the deeplake 3 API (``import deeplake`` runs the same code).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import deeplake_loader as deeplake  # noqa: E402
from deeplake_loader.transforms import RandomResizedCrop  # noqa: E402
from demo import build, model  # noqa: E402  (the demo's dataset and network)


def lightning_module(path: str, batch: int):
    import lightning as L

    class Shapes(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = model()
            self.history, self._epoch = [], None

        def train_dataloader(self):
            ds = deeplake.load(path, read_only=True)
            return (ds.dataloader().transform({"images": RandomResizedCrop(96, scale=(0.5, 1.0)), "labels": None})
                    .batch(batch).shuffle().pytorch(num_threads=2))

        def on_train_epoch_start(self):
            self._epoch = {"start": time.perf_counter(), "n": 0, "correct": 0, "loss": 0.0}

        def training_step(self, batch, batch_idx):
            x = batch["images"].permute(0, 3, 1, 2).float().div_(255)
            y = batch["labels"].view(-1)
            out = self.net(x)
            loss = torch.nn.functional.cross_entropy(out, y)
            e = self._epoch
            e["n"] += len(y)
            e["correct"] += int((out.argmax(1) == y).sum())
            e["loss"] += float(loss.detach()) * len(y)
            return loss

        def on_train_epoch_end(self):
            e = self._epoch
            dt = time.perf_counter() - e["start"]
            row = {"loss": e["loss"] / e["n"], "accuracy": e["correct"] / e["n"], "images": e["n"],
                   "images_per_s": e["n"] / dt}
            self.history.append(row)
            print(f"[rank {self.global_rank}] epoch {self.current_epoch + 1}: loss {row['loss']:.3f}, "
                  f"accuracy {row['accuracy']:.1%}, {row['images']} images, {row['images_per_s']:,.0f} images/s",
                  flush=True)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    return Shapes()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "deeplake_loader_demo"))
    args = ap.parse_args(argv)

    import lightning as L

    torch.set_num_threads(1)  # the loader's decode threads use the other core
    path = os.path.join(args.workdir, f"shapes_{args.images}")
    if int(os.environ.get("LOCAL_RANK", 0)) == 0:  # DDP: the launched copies find it built
        build(path, args.images)
    deeplake.random.seed(0)
    torch.manual_seed(0)
    module = lightning_module(path, args.batch)
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=args.devices,
                        strategy="ddp" if args.devices > 1 else "auto", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module)
    return module.history


if __name__ == "__main__":
    main()
