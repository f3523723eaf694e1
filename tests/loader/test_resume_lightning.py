"""PyTorch Lightning saves the loader's state in its checkpoints and restores it: a Trainer.fit killed
with SIGKILL mid-epoch, after a ModelCheckpoint every n train steps, and resumed in a new process
with ``ckpt_path`` sees, from the checkpoint's step on, exactly the rows (and cropped pixels) the
uninterrupted run saw."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.common import resume

REPO = Path(__file__).resolve().parents[2]
EVERY, KILL_AT, EPOCHS = 10, 25, 2

SCRIPT = textwrap.dedent("""
    import json, os, signal, sys, zlib
    import numpy as np
    import torch
    import lightning as L
    import deeplake_loader as dl
    from deeplake_loader.transforms import RandomResizedCrop

    path, mode, out_file, ckpt_dir = sys.argv[1:5]
    EVERY, KILL_AT, EPOCHS = %d, %d, %d
    if mode != "resume":  # the resumed run must take the root seed from the checkpoint
        dl.random.seed(20261124)
    ds = dl.load(path, read_only=True)
    loader = (ds.dataloader().transform({"images": RandomResizedCrop(16, scale=(0.2, 1.0), hflip=True), "labels": None,
                                         "index": None})
              .batch(8).shuffle(buffer_size=1).pytorch())
    out = open(out_file, "a")

    class Model(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(16 * 16 * 3, 7)

        def training_step(self, batch, batch_idx):
            images, labels, index = batch
            rows = index.reshape(-1).tolist()
            crc = zlib.crc32(images.numpy().tobytes())
            out.write(json.dumps([self.global_step, self.current_epoch, batch_idx, rows, crc]) + "\\n")
            out.flush()  # the page cache keeps it through SIGKILL
            logits = self.net(images.reshape(len(rows), -1).float() / 255)
            return torch.nn.functional.cross_entropy(logits, labels.reshape(-1))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class Kill(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == KILL_AT:
                os.kill(os.getpid(), signal.SIGKILL)

    callbacks = []
    if mode == "kill":
        callbacks = [L.pytorch.callbacks.ModelCheckpoint(dirpath=ckpt_dir, filename="{step}", every_n_train_steps=EVERY,
                                                         save_top_k=-1), Kill()]
    trainer = L.Trainer(max_epochs=EPOCHS, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, enable_checkpointing=mode == "kill",
                        callbacks=callbacks)
    ckpt = os.path.join(ckpt_dir, f"step={(KILL_AT // EVERY) * EVERY}.ckpt") if mode == "resume" else None
    trainer.fit(Model(), train_dataloaders=loader, ckpt_path=ckpt)
""" % (EVERY, KILL_AT, EPOCHS))


def fit(tmp_path, path, mode):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"{mode}.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(script), path, mode, str(out), str(tmp_path / "ckpt")], env=env,
                          capture_output=True, text=True, timeout=600)
    steps = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return proc, steps


def test_lightning_resumes_mid_epoch_after_sigkill(tmp_path):
    pytest.importorskip("lightning")
    path = str(tmp_path / "ds")
    resume.build(path)
    proc, full = fit(tmp_path, path, "full")
    assert proc.returncode == 0, proc.stderr[-4000:]
    per_epoch = -(-resume.ROWS // resume.BATCH)
    assert len(full) == EPOCHS * per_epoch and [s[0] for s in full] == list(range(len(full)))

    proc, killed = fit(tmp_path, path, "kill")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-4000:]
    assert killed == full[:KILL_AT]  # the killed run saw what the uninterrupted run saw
    ckpt = (KILL_AT // EVERY) * EVERY
    assert ckpt % per_epoch and (tmp_path / "ckpt" / f"step={ckpt}.ckpt").exists()  # a mid-epoch checkpoint

    proc, resumed = fit(tmp_path, path, "resume")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "not resumable" not in proc.stderr  # Lightning found state_dict / load_state_dict
    assert [s[3] for s in resumed] == [s[3] for s in full[ckpt:]], "the resumed run saw other rows"
    assert resumed == full[ckpt:]  # the same steps, epochs, batch indices, rows and cropped pixels
