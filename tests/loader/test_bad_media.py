"""Damaged media samples (a video whose file was cut off, a DICOM file without pixel data) raise a
DecodeError naming the tensor, the exact row and what is wrong, on every path: t[i].numpy(),
t.numpy(aslist=True), the chain's numpy / pytorch loaders (decoder threads, worker processes) and
ds.pytorch(). The damaged payloads are written into the dataset's chunk in place (same length), so
the chunk stays well-formed and only the file inside is bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.common import media as gen

pytest.importorskip("av")
pytest.importorskip("pydicom")

import deeplake_loader as dl  # noqa: E402
from deeplake_loader.errors import DecodeError  # noqa: E402

BAD_ROW = 2


def _replace_in_chunks(root: Path, tensor: str, old: bytes, new: bytes):
    assert len(old) == len(new)
    hits = 0
    for chunk in (root / tensor / "chunks").iterdir():
        data = chunk.read_bytes()
        if old in data:
            chunk.write_bytes(data.replace(old, new, 1))
            hits += 1
    assert hits == 1


def _no_pixel_dicom_of_length(n: int) -> bytes:
    for k in range(0, 4096, 2):
        raw = gen.dicom_bytes(pixels=False, comment="x" * k)
        if len(raw) == n:
            return raw
        if len(raw) > n:
            break
    raise AssertionError(f"no pixel-less DICOM file of exactly {n} bytes")


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_media")
    files = gen.write_all(folder / "files")
    root = folder / "ds"
    ds = dl.empty(str(root))
    ds.create_tensor("videos", htype="video", sample_compression="mp4")
    names = ["h264.mp4", "h264_b0.mp4", "h264.mp4", "h264_b0.mp4"]
    ds.videos.extend([dl.read(files[n]) for n in names])
    ds.create_tensor("scans", htype="dicom")
    ds.scans.extend([dl.read(files[n]) for n in ("gray16.dcm", "gray16b.dcm", "gray16.dcm", "gray16b.dcm")])
    # row 2 of each: the same length of bytes, but a video whose second half (its index) is gone and
    # a DICOM file with no pixel data; rows 0 and 2 held identical files, so damage only the second copy
    video = Path(files["h264.mp4"]).read_bytes()
    chunk = next((root / "videos" / "chunks").iterdir())
    data = chunk.read_bytes()
    at = data.index(video, data.index(video) + 1)
    chunk.write_bytes(data[:at + len(video) // 2] + b"\0" * (len(video) - len(video) // 2) + data[at + len(video):])
    scan = Path(files["gray16.dcm"]).read_bytes()
    chunk = next((root / "scans" / "chunks").iterdir())
    data = chunk.read_bytes()
    at = data.index(scan, data.index(scan) + 1)
    chunk.write_bytes(data[:at] + _no_pixel_dicom_of_length(len(scan)) + data[at + len(scan):])
    return root


REASONS = {"videos": "not a readable video file", "scans": "no pixel data"}


def _check(err, tensor):
    msg = str(err.value)
    assert f"tensor '{tensor}'" in msg and f"sample index {BAD_ROW}" in msg and REASONS[tensor] in msg, msg
    assert err.value.index == BAD_ROW and err.value.tensor == tensor


@pytest.mark.parametrize("tensor", ["videos", "scans"])
def test_reader_paths(damaged, tensor):
    ds = dl.load(str(damaged))
    for row in (0, 1, 3):
        assert ds[tensor][row].numpy().size
    with pytest.raises(DecodeError) as err:
        ds[tensor][BAD_ROW].numpy()
    _check(err, tensor)
    with pytest.raises(DecodeError) as err:
        ds[tensor].numpy(aslist=True)
    _check(err, tensor)
    with pytest.raises(DecodeError) as err:
        ds[tensor][BAD_ROW].data()
    _check(err, tensor)
    assert len(ds[tensor][BAD_ROW].tobytes())  # the stored bytes are still there to inspect


def _keep(sample):
    return sample


def _rows_and_sizes(samples):
    """A collate_fn: (row, size of the decoded sample) of each (the files' shapes differ)."""
    return [(int(s["index"][0]), int(next(iter(s)).size)) for s in samples]


@pytest.mark.parametrize("tensor", ["videos", "scans"])
@pytest.mark.parametrize("how", ["numpy_threads", "pytorch_workers", "oss_pytorch"])
def test_loader_paths(damaged, tensor, how):
    ds = dl.load(str(damaged))
    if how == "numpy_threads":
        loader = ds.dataloader().batch(2).numpy(tensors=[tensor], num_threads=2)
    elif how == "pytorch_workers":
        loader = ds.dataloader().batch(1).transform(_keep).pytorch(tensors=[tensor], num_workers=2)
    else:
        loader = ds.pytorch(tensors=[tensor], batch_size=1, num_workers=0, collate_fn=list)
    rows = []
    with pytest.raises(DecodeError) as err:
        for batch in loader:
            rows.append(batch)
    _check(err, tensor)
    assert len(rows) <= BAD_ROW  # the rows before the bad one came through, nothing after it


def test_unknown_linked_file_names_path_and_row(tmp_path):
    bad = tmp_path / "not_a_video.bin"
    bad.write_bytes(b"\x00" * 64)
    ds = dl.empty(str(tmp_path / "ds"))
    ds.create_tensor("links", htype="link[video]", sample_compression="mp4", verify=False)  # files not read
    ds.links.extend([dl.link(gen.make_video(tmp_path / "ok.mp4", frames=4)), dl.link(str(bad))])
    ds = dl.load(str(tmp_path / "ds"))
    assert ds.links[0].numpy().shape == (4, 48, 64, 3)
    for read in (lambda: ds.links[1].numpy(), lambda: list(ds.dataloader().batch(2).numpy(num_threads=2))):
        with pytest.raises(DecodeError) as err:
            read()
        assert "tensor 'links'" in str(err.value) and "sample index 1" in str(err.value), str(err.value)
        assert str(bad) in str(err.value)


@pytest.mark.parametrize("tensor", ["videos", "scans"])
@pytest.mark.parametrize("workers", [0, 2])
def test_ignore_errors_skips_the_bad_file_and_names_it(damaged, tensor, workers):
    """ds.dataloader(ignore_errors=True): the damaged file's row is left out (on the decoder's
    threads, and with a transform in worker processes), the batches stay full, the summary names
    tensor, row and the library's reason."""
    ds = dl.load(str(damaged))
    chain = ds.dataloader(ignore_errors=True).batch(2)
    if workers:
        chain = chain.transform(_keep)
    loader = chain.pytorch(tensors=[tensor], num_workers=workers, num_threads=2, collate_fn=_rows_and_sizes)
    with loader:
        batches = list(loader)
    assert [[r for r, _ in b] for b in batches] == [[0, 1], [3]] and all(n for b in batches for _, n in b)
    (skip,) = list(loader.summary)
    assert (skip.row, skip.tensor, skip.stage, skip.error) == (BAD_ROW, tensor, "decode", "DecodeError")
    assert REASONS[tensor] in skip.reason
