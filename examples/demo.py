"""README's main job: build a sample image dataset, then train a small CNN over it with the loader,
printing throughput.

    python3 examples/demo.py [--images 3000] [--epochs 2] [--workdir /tmp/deeplake_loader_demo]

The dataset is written in the Deep Lake 3 format (real deeplake 3.x opens it too); the training
script uses the deeplake API names, so ``import deeplake`` would run the same code.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import deeplake_loader as deeplake
from deeplake_loader.transforms import RandomResizedCrop

CLASSES = ["circle", "square", "stripes", "noise"]


def make_image(label: int, rng, size=(192, 256)) -> np.ndarray:
    """A photo-like image whose content depends on the class (so the CNN has something to learn)."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(40, 200, 3).astype(np.float32)
    img = np.broadcast_to(base, (h, w, 3)).copy()
    cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, rng.uniform(0.15, 0.3) * h
    if label == 0:
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = 255 - base
    elif label == 1:
        img[(abs(y - cy) < r) & (abs(x - cx) < r)] = 255 - base
    elif label == 2:
        img[((x // 12) % 2) == 0] *= 0.4
    else:
        img += rng.normal(0, 40, img.shape)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def build(path: str, n: int) -> None:
    if deeplake.exists(path):
        ds = deeplake.load(path, read_only=True)
        if len(ds) == n:
            print(f"dataset: reusing {path} ({n} images)")
            return
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    ds = deeplake.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("labels", htype="class_label", class_names=CLASSES)
        for start in range(0, n, 250):
            labels = [int(v) for v in rng.integers(0, len(CLASSES), min(250, n - start))]
            ds.extend({"images": [make_image(lab, rng) for lab in labels], "labels": labels})
    print(f"dataset: wrote {n} JPEG images + labels to {path} in {time.perf_counter() - t0:.1f} s")


def model():
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, len(CLASSES)),
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "deeplake_loader_demo"))
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)  # the loader's decode threads use the other core
    path = os.path.join(args.workdir, "shapes")
    build(path, args.images)
    ds = deeplake.load(path, read_only=True)
    ds.summary()

    # 1) loading alone: decode every JPEG to a uint8 tensor batch
    loader = ds.dataloader().batch(args.batch).shuffle().pytorch(num_threads=2)
    t0, n = time.perf_counter(), 0
    for batch in loader:
        n += len(batch["images"])
    dt = time.perf_counter() - t0
    print(f"load only : {n} images in {dt:.2f} s = {n / dt:,.0f} images/s (full-size decode, shuffled)")

    # 2) training with the fused random-resized-crop decode (RandomResizedCrop is pushed into the decoder)
    deeplake.random.seed(0)
    train = (ds.dataloader().transform({"images": RandomResizedCrop(96, scale=(0.5, 1.0)), "labels": None})
             .batch(args.batch).shuffle().pytorch(num_threads=2))
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        t0, n, correct, total_loss = time.perf_counter(), 0, 0, 0.0
        for images, labels in train:  # a transform dict: the batch holds its keys, in its order
            x = images.permute(0, 3, 1, 2).float().div_(255)
            y = labels.view(-1)
            opt.zero_grad()
            out = net(x)
            loss = loss_fn(out, y)
            loss.backward()
            opt.step()
            n += len(y)
            correct += int((out.argmax(1) == y).sum())
            total_loss += loss.item() * len(y)
        dt = time.perf_counter() - t0
        print(f"epoch {epoch + 1}: loss {total_loss / n:.3f}, accuracy {correct / n:.1%}, "
              f"{n / dt:,.0f} images/s (decode + crop + train)")
    loader.close()
    train.close()


if __name__ == "__main__":
    main()
