"""Resume tests' shared pieces: a dataset whose every value encodes its row, the chains under test by
name (so another process builds the very same chain), a batch's record (rows + pixel checksum), and
a child-process entry point that loads states and runs on from them.

    python -m tests.common.resume JOBS.json   # prints one JSON line: {job name: [[rows, checksum], ...]}

JOBS.json: {"path": dataset, "jobs": {name: {"chain": chain name, "state": state_dict, "epochs": k}}};
each job builds its chain, loads the state and records ``epochs`` iterations of the loader. The
child never calls ``deeplake_loader.random.seed``: the root seed must come with the state.
"""

from __future__ import annotations

import json
import random
import sys
import zlib

import numpy as np

ROWS = 300
BATCH = 8
BAD_IMAGES = (5, 6, 50, 51, 52, 123, 299)  # rows of the damaged copy (build_damaged) whose images do not decode
BAD_ROWS = (77, 200)  # rows the ignore_* chains' transform fails on


def image(i: int) -> np.ndarray:
    """Noise seeded by the row (incompressible, so the shuffle buffer fills) with the row id in its
    first pixels."""
    img = np.random.default_rng(1000 + i).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    img[0, 0] = (i & 0xFF, (i >> 8) & 0xFF, 7)
    return img


def build(path: str, rows: int = ROWS) -> None:
    import deeplake_loader as dl

    ds = dl.empty(path)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png", max_chunk_size=40_000)
        ds.create_tensor("labels", htype="class_label")
        ds.create_tensor("row", dtype="int64")
        ds.extend({"images": [image(i) for i in range(rows)], "labels": [i % 7 for i in range(rows)],
                   "row": list(range(rows))})


def build_damaged(path: str) -> None:
    """The dataset of ``build`` with the images of ``BAD_IMAGES`` replaced by bytes no codec reads."""
    from tests.common import damage

    build(path)
    damage.replace_samples(path, "images", {r: damage.not_an_image(500) for r in BAD_IMAGES})


def fail_some(row):
    """A per-tensor transform of ``row`` that raises on ``BAD_ROWS``."""
    if int(np.asarray(row).reshape(-1)[0]) in BAD_ROWS:
        raise ValueError(f"row {int(np.asarray(row).reshape(-1)[0])} refused")
    return row


def jitter(label):
    """A per-sample transform drawing from the global generators (as torchvision / albumentations
    transforms do): the label plus random numbers from NumPy, Python and (when imported) torch."""
    value = int(np.random.randint(0, 1 << 30)) ^ random.getrandbits(30)
    torch = sys.modules.get("torch")
    if torch is not None:
        value ^= int(torch.randint(0, 1 << 30, (1,)))
    return np.asarray(label, np.int64).reshape(-1) * 0 + value


def chain(ds, name: str):
    """The chains whose resumes the tests compare with uninterrupted runs."""
    from deeplake_loader.transforms import RandomResizedCrop

    crop = {"images": RandomResizedCrop(16, scale=(0.2, 1.0), hflip=True), "labels": jitter, "row": None, "index": None}
    base = ds.dataloader().batch(BATCH)
    if name == "shuffle":
        return base.transform(crop).shuffle(buffer_size=1).pytorch()
    if name == "shuffle_workers":
        return base.transform(crop).shuffle(buffer_size=1).pytorch(num_workers=2)
    if name == "shuffle_workers_persistent":
        return base.transform(crop).shuffle(buffer_size=1).pytorch(num_workers=2, persistent_workers=True)
    if name == "sample_by":  # duplicates: a row may be drawn twice in one epoch
        weights = np.arange(ROWS) % 5 + 1.0
        return base.transform(crop).sample_by(weights, size=250).shuffle(buffer_size=1).pytorch()
    if name == "query_offset":  # no shuffle, every label but 3, starting at the 11th row
        return base.query("select * where labels != 3").offset(11).transform(crop).pytorch()
    if name == "plain_tensors":  # no transform: the native fast path
        return base.shuffle(buffer_size=1).pytorch(tensors=["images", "row"])
    # over the damaged copy (build_damaged), skipping what cannot be decoded or transformed
    skipping = ds.dataloader(ignore_errors=True).batch(BATCH)
    if name == "ignore_shuffle":
        return skipping.transform(dict(crop, row=fail_some)).shuffle(buffer_size=1).pytorch()
    if name == "ignore_shuffle_workers":
        return skipping.transform(dict(crop, row=fail_some)).shuffle(buffer_size=1).pytorch(num_workers=2)
    if name == "ignore_plain":  # no transform: the fast path's columns refilled
        return skipping.shuffle(buffer_size=1).pytorch(tensors=["images", "row"])
    raise KeyError(name)


def record(batch) -> list:
    """[row ids, checksum of every value in the batch] (the index says which rows it holds; the
    checksum covers pixels after the crop and flip, and the transformed labels)."""
    rows = np.asarray(batch["index"]).reshape(-1).tolist()
    crc = 0
    for key in sorted(batch.keys()):
        crc = zlib.crc32(np.ascontiguousarray(np.asarray(batch[key])).tobytes(), crc)
    return [rows, crc]


def run(loader, epochs: int) -> list:
    """Records of ``epochs`` iterations of ``loader``, one list per iteration."""
    return [[record(b) for b in loader] for _ in range(epochs)]


def main(jobs_file: str) -> None:
    import deeplake_loader as dl

    spec = json.loads(open(jobs_file).read())
    ds = dl.load(spec["path"], read_only=True)
    out = {}
    for name, job in spec["jobs"].items():
        loader = chain(ds, job["chain"])
        loader.load_state_dict(job["state"])
        out[name] = run(loader, job["epochs"])
        loader.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
