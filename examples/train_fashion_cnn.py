"""A Fashion-MNIST-like training script written against the deeplake 3 API.

It runs unchanged with either import line below (real deeplake 3.9.52's ``ds.dataloader()``
needs an Activeloop token to iterate; deeplake_loader runs it offline):

    import deeplake
    import deeplake_loader as deeplake

    python3 examples/train_fashion_cnn.py --path /tmp/fashion --n 6000 --epochs 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn as nn

import deeplake_loader as deeplake

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def garment(label: int, rng) -> np.ndarray:
    """A 28x28 grayscale picture whose silhouette depends on the class, with noise and jitter."""
    img = np.zeros((28, 28), np.float32)
    y, x = np.mgrid[0:28, 0:28]
    dy, dx = rng.integers(-2, 3, 2)
    y, x = y - dy, x - dx
    width = 4 + label  # each class has its own silhouette width and orientation
    if label % 2:
        img[(abs(x - 14) < width / 2) & (y > 3) & (y < 25)] = 200
    else:
        img[(abs(y - 14) < width / 2) & (x > 3) & (x < 25)] = 200
    img += rng.normal(0, 25, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def build(path: str, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ds = deeplake.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("images", htype="image.gray", sample_compression="png")
        ds.create_tensor("labels", htype="class_label", class_names=CLASSES)
        labels = rng.integers(0, len(CLASSES), n)
        ds.extend({"images": [garment(int(v), rng) for v in labels], "labels": [int(v) for v in labels]})
    return ds


def to_input(image):
    """Per-sample transform: (28, 28, 1) uint8 -> (1, 28, 28) float in [-1, 1]."""
    return (torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() - 127.5) / 127.5


def train(path: str, epochs: int, batch_size: int, num_workers: int = 0):
    ds = deeplake.load(path, read_only=True)
    loader = (ds.dataloader().transform({"images": to_input, "labels": None}).batch(batch_size).shuffle()
              .pytorch(num_workers=num_workers))
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(16 * 7 * 7, len(CLASSES)))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(epochs):
        t0, seen, correct, total = time.perf_counter(), 0, 0, 0.0
        for images, labels in loader:  # the transform dict's keys (index only if it names it)
            y = labels.view(-1)
            opt.zero_grad()
            out = net(images)
            loss = loss_fn(out, y)
            loss.backward()
            opt.step()
            seen += len(y)
            correct += int((out.argmax(1) == y).sum())
            total += loss.item() * len(y)
        history.append({"loss": total / seen, "accuracy": correct / seen, "images_per_s": seen / (time.perf_counter() - t0)})
        print(f"epoch {epoch + 1}: loss {history[-1]['loss']:.3f} accuracy {history[-1]['accuracy']:.1%} "
              f"({history[-1]['images_per_s']:,.0f} images/s)")
    loader.close()
    return history


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", default="/tmp/deeplake_loader_fashion")
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    deeplake.random.seed(0)
    build(args.path, args.n)
    return train(args.path, args.epochs, args.batch, args.workers)


if __name__ == "__main__":
    main()
