"""``ds.dataloader(ignore_errors=True)`` (pipeline/refill.py): a sample that cannot be read, decoded
or transformed is skipped; every batch but the last stays full, taking the following rows of the
plan; ``loader.summary`` names each skipped row with its tensor, stage and error; nothing is
skipped without ignore_errors. (deeplake 3.9.52 drops the whole batch of a bad sample, and its
``summary`` is always None.)

The dataset's images encode their row in their pixels and a ``row`` tensor holds it, so every batch
is checked against the rows it claims; some rows' stored images are replaced by bytes no codec
reads (tests/common/damage.py), one by an empty payload under a non-empty shape (a read error),
and a transform fails on others.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import deeplake_loader as dl
from deeplake_loader.errors import CorruptDatasetError, DecodeError, TransformError
from deeplake_loader.transforms import RandomResizedCrop
from tests.common import damage

ROWS = 60
BAD_DECODE = (4, 17, 18, 33, 59)  # not an image
BAD_READ = (41,)  # no stored bytes under a non-empty shape
BAD_TRANSFORM = (7, 20, 46)  # the transform raises
H, W = 10, 12


def picture(i):
    img = np.empty((H, W, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = i, 255 - i, 7
    return img


@pytest.fixture(scope="module")
def bad_ds(tmp_path_factory):
    path = tmp_path_factory.mktemp("ignore_errors") / "ds"
    ds = dl.empty(str(path))
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png", max_chunk_size=2000)
        ds.create_tensor("labels", htype="class_label")
        ds.create_tensor("row", dtype="int64")
        ds.extend({"images": [picture(i) for i in range(ROWS)], "labels": [i % 5 for i in range(ROWS)],
                   "row": list(range(ROWS))})
    bad = {r: damage.not_an_image(300) for r in BAD_DECODE}
    bad.update({r: (b"", (H, W, 3)) for r in BAD_READ})
    damage.replace_samples(path, "images", bad)
    out = dl.load(str(path), read_only=True)
    assert len(out._reader("images").enc.table) > 4  # several chunks
    return out


def images_and_rows(path, n):
    """A dataset at ``path`` of ``n`` pictures (several chunks) and their row ids."""
    ds = dl.empty(str(path))
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png", max_chunk_size=2000)
        ds.create_tensor("row", dtype="int64")
        ds.extend({"images": [picture(i) for i in range(n)], "row": list(range(n))})


def fail_on_some(sample):
    row = int(sample["row"][0])
    if row in BAD_TRANSFORM:
        raise ZeroDivisionError(f"no transform for row {row}")
    return sample


def per_tensor_fail(v):
    if int(v[0]) in BAD_TRANSFORM:
        raise KeyError("nope")
    return v


def rows_and_check(batch):
    """The rows a batch holds (its ``row`` column), after checking each image is its row's."""
    rows = np.asarray(batch["row"]).reshape(-1).tolist()
    images = np.asarray(batch["images"])
    assert len(images) == len(rows)
    for img, r in zip(images, rows):
        assert np.array_equal(img, picture(r)), f"image of another row under row {r}"
    if "index" in batch.keys():
        assert np.asarray(batch["index"]).reshape(-1).tolist() == rows
    return rows


def loader_for(ds, transform, workers, bs, shuffle=False, drop_last=False, mode="pytorch"):
    c = ds.dataloader(ignore_errors=True).batch(bs, drop_last=drop_last)
    if shuffle:
        c = c.shuffle(buffer_size=1)
    if transform == "callable":
        c = c.transform(fail_on_some)
    elif transform == "dict":
        c = c.transform({"images": None, "row": per_tensor_fail, "index": None})
    return getattr(c, mode)(tensors=None if transform == "dict" else ["images", "row"], num_workers=workers)


@pytest.mark.parametrize("bs", [1, 4, 7])
@pytest.mark.parametrize("transform,workers", [("none", 0), ("callable", 0), ("callable", 2), ("dict", 0),
                                               ("dict", 2)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_bad_samples_are_skipped_and_batches_stay_full(bad_ds, bs, transform, workers, shuffle):
    bad = set(BAD_DECODE) | set(BAD_READ) | (set(BAD_TRANSFORM) if transform != "none" else set())
    good = [r for r in range(ROWS) if r not in bad]
    with loader_for(bad_ds, transform, workers, bs, shuffle) as loader:
        assert len(loader) == -(-ROWS // bs)  # as planned: the skips are not known before reading
        for epoch in range(2):
            batches = [rows_and_check(b) for b in loader]
            assert [len(b) for b in batches[:-1]] == [bs] * (len(batches) - 1) and 0 < len(batches[-1]) <= bs
            rows = [r for b in batches for r in b]
            assert (sorted(rows) if shuffle else rows) == good
        summary = loader.summary
    assert len(summary) == 2 * len(bad)
    assert sorted(s.row for s in summary if s.epoch == 1) == sorted(bad) == sorted(s.row for s in summary
                                                                                    if s.epoch == 2)
    for s in summary:
        if s.row in BAD_READ:
            assert (s.stage, s.tensor, s.error) == ("read", "images", "CorruptDatasetError")
            assert "no stored bytes" in s.reason
        elif s.row in BAD_DECODE:
            assert (s.stage, s.tensor, s.error) == ("decode", "images", "DecodeError")
        else:
            assert s.stage == "transform" and s.error == ("ZeroDivisionError" if transform == "callable" else "KeyError")
            assert s.tensor == (None if transform == "callable" else "row")
            assert "Traceback" in s.traceback
    assert str(BAD_DECODE[0]) in str(summary) and f"{len(summary)} sample(s) skipped" in str(summary)


def test_nothing_is_skipped_without_ignore_errors(bad_ds):
    loader = bad_ds.dataloader().batch(4).pytorch(tensors=["images", "row"])
    assert loader.summary is None  # deeplake's answer without ignore_errors
    got = []
    with pytest.raises(DecodeError) as e:
        for b in loader:
            got.append(rows_and_check(b))
    assert (e.value.tensor, e.value.index) == ("images", 4) and got == [[0, 1, 2, 3]]
    loader = bad_ds[36:].dataloader().batch(4).pytorch(tensors=["images", "row"])
    with pytest.raises(CorruptDatasetError) as e:
        list(loader)
    assert (e.value.tensor, e.value.index) == ("images", 41)
    loader = bad_ds[5:].dataloader().transform(fail_on_some).batch(4).pytorch(tensors=["images", "row"])
    with pytest.raises(TransformError) as e:
        list(loader)
    assert e.value.index == 7


def test_drop_last_keeps_every_batch_full(bad_ds):
    loader = bad_ds.dataloader(ignore_errors=True).batch(8, drop_last=True).pytorch(tensors=["images", "row"])
    batches = [rows_and_check(b) for b in loader]
    good = [r for r in range(56) if r not in BAD_DECODE + BAD_READ]  # the plan's 7 full batches: rows 0..55
    assert [len(b) for b in batches] == [8] * (len(good) // 8)
    assert [r for b in batches for r in b] == good[:len(batches) * 8]


def test_numpy_and_decode_methods(bad_ds):
    from PIL import Image

    batches = list(bad_ds.dataloader(ignore_errors=True).batch(5).numpy(tensors=["images", "row"]))
    rows = [int(s["row"][0]) for b in batches for s in b]
    assert rows == [r for r in range(ROWS) if r not in BAD_DECODE + BAD_READ]
    assert all(np.array_equal(s["images"], picture(int(s["row"][0]))) for b in batches for s in b)
    assert [len(b) for b in batches[:-1]] == [5] * (len(batches) - 1)
    pil = bad_ds.dataloader(ignore_errors=True).batch(5).numpy(tensors=["images", "row"],
                                                               decode_method={"images": "pil"})
    samples = [s for b in pil for s in b]
    assert [int(s["row"][0]) for s in samples] == rows and all(isinstance(s["images"], Image.Image) for s in samples)
    assert {s.stage for s in pil.summary} == {"read", "decode"}
    # tobytes decodes nothing: only the sample without bytes is left out
    raw = bad_ds.dataloader(ignore_errors=True).batch(5).numpy(tensors=["images", "row"],
                                                               decode_method={"images": "tobytes"})
    assert [int(s["row"][0]) for b in raw for s in b] == [r for r in range(ROWS) if r not in BAD_READ]
    assert raw.summary.rows == list(BAD_READ)


def test_a_chunk_that_cannot_be_read_loses_its_rows(tmp_path):
    path = tmp_path / "ds"
    images_and_rows(path, 30)
    reader = dl.load(str(path), read_only=True)._reader("images")
    name, positions, _ = next(p for p in reader.chunk_plan(np.arange(30)) if 10 in np.arange(30)[p[1]])
    lost = np.arange(30)[positions].tolist()
    chunk = path / reader.vs.chunk_key(reader.key, name)
    chunk.write_bytes(chunk.read_bytes()[:40])  # cut short: its header promises samples it does not hold
    loader = dl.load(str(path), read_only=True).dataloader(ignore_errors=True).batch(4).pytorch()
    batches = [rows_and_check(b) for b in loader]
    assert [r for b in batches for r in b] == [r for r in range(30) if r not in lost]
    assert sorted(loader.summary.rows) == lost and {s.stage for s in loader.summary} == {"read"}


def test_fused_crop_skips_bad_and_empty_images(tmp_path):
    """The fused decode: a DecodeError in the batch kernel names its batch position; the other
    images are decoded (and cropped) all the same. An empty image cannot be cropped: skipped too."""
    from tests.common import images

    path = tmp_path / "ds"
    ds = dl.empty(str(path))
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("row", dtype="int64")
        for i in range(20):
            ds.images.append(None if i == 9 else dl.sample.Sample(buffer=images.make_jpeg(24, 30, "RGB", seed=i),
                                                                  compression="jpeg"))
            ds.row.append(i)
    jpeg = dl.load(str(path))._reader("images").stored_bytes([3])[0]
    bad, reason = damage.libjpeg_error(bytes(jpeg))
    damage.replace_samples(path, "images", {3: bad, 12: damage.not_an_image(len(jpeg))})
    ds = dl.load(str(path), read_only=True)
    loader = ds.dataloader(ignore_errors=True).transform({"images": RandomResizedCrop(8), "row": None}).batch(4).pytorch()
    assert loader._get_pipeline().columns["images"].crop is not None
    batches = list(loader)
    rows = [r for b in batches for r in b["row"].reshape(-1).tolist()]
    assert rows == [r for r in range(20) if r not in (3, 9, 12)]
    assert [tuple(b["images"].shape) for b in batches] == [(4, 8, 8, 3)] * 4 + [(1, 8, 8, 3)]
    by_row = {s.row: s for s in loader.summary}
    assert sorted(by_row) == [3, 9, 12]
    assert by_row[3].stage == "decode" and reason in by_row[3].reason
    assert by_row[9].stage == "transform" and "cannot crop an empty image" in by_row[9].reason
    assert by_row[12].stage == "decode"


def test_an_error_of_the_whole_batch_is_raised(bad_ds):
    def collate(samples):
        raise RuntimeError("a collate_fn that fails")

    loader = bad_ds.dataloader(ignore_errors=True).batch(4).pytorch(tensors=["row"], collate_fn=collate)
    with pytest.raises(TransformError, match="collate_fn raised RuntimeError"):
        next(iter(loader))


def test_verbose_logs_each_skip(bad_ds, caplog):
    loader = bad_ds.dataloader(ignore_errors=True, verbose=True).batch(10).pytorch(tensors=["images", "row"])
    with caplog.at_level(logging.WARNING, logger="deeplake_loader"):
        list(loader)
    logged = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(logged) == len(BAD_DECODE + BAD_READ) and "row 4" in logged[0]
    quiet = bad_ds.dataloader(ignore_errors=True).batch(10).pytorch(tensors=["images", "row"])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="deeplake_loader"):
        list(quiet)
    assert not caplog.records and len(quiet.summary) == len(BAD_DECODE + BAD_READ)


def test_the_module_function_and_the_chain_take_the_switches(bad_ds):
    from deeplake_loader.enterprise.dataloader import dataloader

    loader = dataloader(bad_ds, ignore_errors=True).batch(60).pytorch(tensors=["row"])
    assert len(next(iter(loader))["row"]) == 60 and len(loader.summary) == 0  # labels alone: nothing bad
    with pytest.raises(TypeError):
        bad_ds.dataloader(ignore=True)


def test_a_torch_dataloader_rebuilt_from_the_parts_drops_bad_samples_from_their_batch(bad_ds):
    """torch's batch sampler chose the batch's rows: nothing follows to refill from, so the batch
    holds its good rows; the loader's summary names the others."""
    loader = bad_ds.dataloader(ignore_errors=True).batch(6).pytorch(tensors=["images", "row"])
    rebuilt = torch.utils.data.DataLoader(loader.dataset, batch_sampler=loader.batch_sampler,
                                          collate_fn=loader.collate_fn)
    batches = [rows_and_check(b) for b in rebuilt]
    assert [r for b in batches for r in b] == [r for r in range(ROWS) if r not in BAD_DECODE + BAD_READ]
    assert [len(b) for b in batches][:3] == [5, 6, 5]  # rows 0-5 (4 is bad), 6-11, 12-17 (17 is bad)
    assert sorted(loader.summary.rows) == sorted(BAD_DECODE + BAD_READ)
    # a batch of bad rows only: no batch to give, an error says so (rows 17 and 18 are both bad)
    loader = bad_ds[[17, 18, 19]].dataloader(ignore_errors=True).batch(2).pytorch(tensors=["images", "row"])
    rebuilt = torch.utils.data.DataLoader(loader.dataset, batch_sampler=loader.batch_sampler,
                                          collate_fn=loader.collate_fn)
    with pytest.raises(dl.errors.DeepLakeLoaderError, match=r"no row of this batch.*rows \[17, 18\]") as caught:
        next(iter(rebuilt))
    assert caught.value.rows == [17, 18]  # every row, for code that handles it (the text shows 8 at most)


# ---- resume --------------------------------------------------------------------------------------

def _epochs(loader, n):
    return [[rows_and_check(b) for b in loader] for _ in range(n)]


@pytest.mark.parametrize("seed", range(8101, 8113))
def test_resume_after_skips_is_exact(bad_ds, seeded, seed):
    """A random chain (batch size, shuffle, transform, workers) over the damaged dataset, saved
    after a random batch and resumed in a new loader: the rest of the epoch and the next one are
    exactly the uninterrupted run's; the saved state says how far the skips took the plan."""
    rng = np.random.default_rng(seed)
    bs, shuffle = int(rng.integers(1, 9)), bool(rng.integers(0, 2))
    transform = ["none", "callable", "dict"][int(rng.integers(0, 3))]
    workers = 2 if transform != "none" and rng.random() < 0.3 else 0
    seeded(seed)
    with loader_for(bad_ds, transform, workers, bs, shuffle) as ref:
        e1, e2 = _epochs(ref, 2)
    k = int(rng.integers(1, len(e1)))
    seeded(seed)
    with loader_for(bad_ds, transform, workers, bs, shuffle) as first:
        it = iter(first)
        got = [rows_and_check(next(it)) for _ in range(k)]
        state = first.state_dict()
    assert got == e1[:k]
    with loader_for(bad_ds, transform, workers, bs, shuffle) as resumed:
        resumed.load_state_dict(state)
        rest, nxt = _epochs(resumed, 2)
        assert rest == e1[k:] and nxt == e2
        assert len(resumed.summary) >= 1  # the next epoch's skips at least


def test_a_state_after_skips_needs_ignore_errors(bad_ds):
    loader = bad_ds.dataloader(ignore_errors=True).batch(4).pytorch(tensors=["images", "row"])
    it = iter(loader)
    for _ in range(3):
        next(it)
    state = loader.state_dict()
    assert state["consumed"] == 13 and state["segments"] == [[1, 3]]  # 12 rows and the skipped row 4
    plain = bad_ds.dataloader().batch(4).pytorch(tensors=["images", "row"])
    with pytest.raises(ValueError, match="ignore_errors=True"):
        plain.load_state_dict(state)
    # a state saved before anything was skipped carries no count: any loader resumes it
    clean = bad_ds.dataloader(ignore_errors=True).batch(2).pytorch(tensors=["images", "row"])
    it = iter(clean)
    next(it)
    assert "consumed" not in clean.state_dict()


# ---- distributed ---------------------------------------------------------------------------------

_RANK = r"""
import json, sys
import numpy as np
import torch.distributed as dist
import deeplake_loader as dl
rank, world, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
dist.init_process_group("gloo", rank=rank, world_size=world)
loader = dl.load(path, read_only=True).dataloader(ignore_errors=True).batch(4).pytorch(tensors=["images", "row"],
                                                                                       distributed=True)
batches = []
for b in loader:
    rows = b["row"].reshape(-1).tolist()
    assert all((img[..., 0] == r).all() for img, r in zip(b["images"].numpy(), rows))
    batches.append(rows)
    dist.barrier()  # DDP's lockstep: a rank with fewer batches would leave the other waiting here
out = {"len": len(loader), "batches": batches, "skipped": loader.summary.rows}
dist.barrier()
dist.destroy_process_group()
print(json.dumps(out))
"""


def test_distributed_ranks_keep_equal_batch_counts_when_one_skips(tmp_path):
    """Rank 1's half holds every bad row: it tops its epoch up with its own good rows taken again
    (from the start of its order), so both ranks step len(loader) times and DDP never waits forever."""
    from tests.common.distributed import run_ranks

    path = tmp_path / "ds"
    images_and_rows(path, 32)
    bad = (17, 20, 21, 22, 30)
    damage.replace_samples(path, "images", {r: damage.not_an_image(300) for r in bad})
    script = tmp_path / "rank.py"
    script.write_text(_RANK)
    r0, r1 = run_ranks(script, 2, path, timeout=300)
    assert r0["len"] == r1["len"] == 4 and len(r0["batches"]) == len(r1["batches"]) == 4
    assert sum(r0["batches"], []) == list(range(16)) and r0["skipped"] == []
    good = [r for r in range(16, 32) if r not in bad]
    assert r1["batches"][:3] == [good[0:4], good[4:8], good[8:11]]  # its 11 good rows, then one top-up batch
    # top-up batch 3: from position 3 * 4 = 12 of the rank's order on, its next good rows (cyclically)
    order = list(range(16, 32))
    want = [r for r in order[12:] + order[:12] if r not in bad][:4]
    assert r1["batches"][3] == want
    assert sorted(set(r1["skipped"])) == list(bad)
