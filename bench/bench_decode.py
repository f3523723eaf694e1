"""Decode throughput: Pillow vs the batch kernel (1 and 2 threads), Pillow crop+resize vs the
fused crop+scale kernel, and PNG. All rows decode the same generated images in one run.

Usage: python3 bench/bench_decode.py [--n 64] [--repeat 5] [--png-n 16]
Prints images/s per row, the ratios against the targets, and peak RSS.
"""
from __future__ import annotations

import argparse
import io
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

from PIL import Image  # noqa: E402

from deeplake_loader._kernels import decode as K  # noqa: E402
from deeplake_loader.transforms import RandomResizedCrop  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="JPEG images (500x375, q90, 4:2:0)")
    ap.add_argument("--png-n", type=int, default=16, help="PNG images (500x375 RGB)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per row (median)")
    ap.add_argument("--size", type=int, default=224, help="crop+resize target side")
    args = ap.parse_args(argv)

    print("machine:", C.machine_info())
    C.warm_allocator()
    jpegs = C.jpeg_corpus(args.n)
    pngs = C.png_corpus(args.png_n)
    n, h, w, c = len(jpegs), 375, 500, 3
    out = np.empty((n, h, w, c), np.uint8)
    out.fill(0)                                          # fault the pages in once
    t = RandomResizedCrop(args.size)
    boxes, flips = t.plan_many([(h, w)] * n, np.random.default_rng(0))
    flips[:] = 0
    crop_out = np.zeros((n, args.size, args.size, c), np.uint8)
    png_out = np.zeros((len(pngs), h, w, c), np.uint8)

    def pillow_full():
        for b in jpegs:
            np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))

    def pillow_crop():
        for b, (y, x, bh, bw) in zip(jpegs, boxes):
            im = Image.open(io.BytesIO(b)).convert("RGB")
            np.asarray(im.crop((x, y, x + bw, y + bh)).resize((args.size, args.size), Image.BILINEAR))

    def pillow_png():
        for b in pngs:
            np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))

    rows = []
    rate = lambda count, fn: count / C.time_it(fn, warmup=1, repeat=args.repeat)
    rows.append(("a pillow jpeg 1t", rate(n, pillow_full)))
    rows.append(("b ours jpeg 1t", rate(n, lambda: K.decode_batch(jpegs, out, num_threads=1))))
    rows.append(("c ours jpeg 2t", rate(n, lambda: K.decode_batch(jpegs, out, num_threads=2))))
    rows.append(("d pillow crop+resize 1t", rate(n, pillow_crop)))
    rows.append(("e ours fused crop+scale 1t",
                 rate(n, lambda: K.decode_crop_batch(jpegs, boxes, flips, crop_out, num_threads=1))))
    rows.append(("f1 pillow png 1t", rate(len(pngs), pillow_png)))
    rows.append(("f2 ours png 1t", rate(len(pngs), lambda: K.decode_batch(pngs, png_out, num_threads=1))))
    C.print_table(rows, ratios=[
        ("b ours jpeg 1t", "a pillow jpeg 1t", 1.15),
        ("c ours jpeg 2t", "b ours jpeg 1t", 1.85),
        ("e ours fused crop+scale 1t", "d pillow crop+resize 1t", 1.4),
        ("f2 ours png 1t", "f1 pillow png 1t", 1.3),
    ], title=f"decode: {n} JPEG 500x375 q90, {len(pngs)} PNG 500x375, target {args.size}")


if __name__ == "__main__":
    main()
