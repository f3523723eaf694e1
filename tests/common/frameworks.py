"""Training runs with real framework clients over our loader, importable by tests and runnable as
scripts (DDP and multi-process runs launch this file once per rank):

    python tests/common/frameworks.py lightning PATH OUT_DIR DEVICES LOADER
    python -m torch.distributed.run --nproc_per_node 2 tests/common/frameworks.py accelerate PATH OUT_DIR 1 LOADER

LOADER names how the loader is made (``LOADERS``). Each rank writes ``OUT_DIR/rank<r>.json``:
``{"epochs": [[row, ...] per epoch in the order trained on], "batches": [batch count per epoch]}``.
Every batch is checked against the rows it names (the dataset's ``vec`` is ``[row, 2 * row]``).
"""

import json
import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: the repository root on the path, as under pytest
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch

BATCH = 4
LOADERS = {
    "chain": lambda ds: ds.dataloader().batch(BATCH).shuffle().pytorch(tensors=["vec", "labels"]),
    "chain_distributed": lambda ds: ds.dataloader().batch(BATCH).shuffle().pytorch(tensors=["vec", "labels"],
                                                                                    distributed=True),
    "chain_workers": lambda ds: ds.dataloader().transform({"vec": _as_float, "labels": None, "index": None})
    .batch(BATCH).shuffle().pytorch(num_workers=2),
    # Deep Lake 3's older entry point (deeplake's default num_workers=1)
    "ds_pytorch": lambda ds: ds.pytorch(tensors=["vec", "labels"], batch_size=BATCH, shuffle=True),
}


def _as_float(v):
    return v.astype("float32")


def checked_rows(batch):
    """The batch's rows (its index), after checking every value belongs to its row."""
    rows = batch["index"].reshape(-1)
    assert torch.equal(batch["vec"][:, 0].long(), rows) and torch.equal(batch["vec"][:, 1].long(), 2 * rows), rows
    return rows.tolist()


def _loss(net, batch):
    x = batch["vec"].float() / 100.0
    return torch.nn.functional.cross_entropy(net(x), batch["labels"].reshape(-1).long())


def lightning_module(path, loader_name):
    import lightning as L

    import deeplake_loader as dl

    class Recorder(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(2, 4)
            self.epochs = []

        def train_dataloader(self):
            return LOADERS[loader_name](dl.load(path, read_only=True))

        def on_train_epoch_start(self):
            self.epochs.append([])

        def training_step(self, batch, batch_idx):
            self.epochs[-1].append(checked_rows(batch))
            return _loss(self.net, batch)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return Recorder()


def run_lightning(path, out_dir, devices, loader_name, epochs=2):
    import lightning as L

    module = lightning_module(path, loader_name)
    kw = {"strategy": "ddp"} if devices > 1 else {}
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=devices, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, **kw)
    trainer.fit(module)
    return _write(out_dir, trainer.global_rank, module.epochs)


def run_accelerate(path, out_dir, loader_name, epochs=2):
    from accelerate import Accelerator

    import deeplake_loader as dl

    accelerator = Accelerator(cpu=True)
    net = torch.nn.Linear(2, 4)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net, opt, loader = accelerator.prepare(net, opt, LOADERS[loader_name](dl.load(path, read_only=True)))
    seen = []
    for _ in range(epochs):
        seen.append([])
        for batch in loader:
            seen[-1].append(checked_rows(batch))
            accelerator.backward(_loss(net, batch))
            opt.step()
            opt.zero_grad()
    out = _write(out_dir, accelerator.process_index, seen)
    # a gloo process group left for the interpreter's exit aborts it now and then ("terminate called
    # without an active exception", pytorch/pytorch#190489): a finished script destroys it
    accelerator.wait_for_everyone()  # no rank tears its group down while another still talks to it
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return out


def run_accelerate_crops(url, creds, seed, epochs=2):
    """Accelerate (one process) over an s3 dataset with a random crop in two worker processes: per
    epoch, [rows, crc32 of the cropped pixels] per batch (rows checked against ``vec``)."""
    import zlib

    from accelerate import Accelerator

    import deeplake_loader as dl
    from deeplake_loader.transforms import RandomResizedCrop

    dl.random.seed(seed)
    ds = dl.load(url, read_only=True, creds=creds)
    loader = (ds.dataloader().transform({"images": RandomResizedCrop(12, scale=(0.1, 1.0), hflip=True), "vec": None,
                                         "index": None})
              .batch(BATCH).shuffle().pytorch(num_workers=2))
    accelerator = Accelerator(cpu=True)
    prepared = accelerator.prepare(loader)
    out = []
    for _ in range(epochs):
        out.append([[checked_rows(b), zlib.crc32(b["images"].numpy().tobytes())] for b in prepared])
    loader.close()
    return out


def _write(out_dir, rank, epochs):
    result = {"epochs": [[r for b in e for r in b] for e in epochs], "batches": [len(e) for e in epochs]}
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    return result


def read_ranks(out_dir, n):
    return [json.loads(Path(out_dir, f"rank{r}.json").read_text()) for r in range(n)]


if __name__ == "__main__":
    kind, path, out, devices, loader = sys.argv[1:6]
    if kind == "lightning":
        run_lightning(path, out, int(devices), loader)
    else:
        run_accelerate(path, out, loader)
