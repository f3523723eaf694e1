"""Bad samples, on every decode path: each error names the tensor and the exact row, and keeps the
codec library's own reason; an image stored with no bytes is legal only for a sample of empty shape.

Paths: the reader (``t[i].numpy()``, ``t.numpy(aslist=True)``), the loader's batch decode, its fused
RandomResizedCrop, its worker processes, ``decode_method='pil'`` and ``'tobytes'``. Codecs: JPEG,
8-bit PNG (libdeflate fast path) and interlaced PNG (libpng). The bad row sits first, in the middle
or last in its batch of 4 (batches are rows 0-3, 4-7, 8-11)."""

import shutil

import numpy as np
import pytest

import deeplake_loader as dl
from deeplake_loader.errors import CorruptDatasetError, DecodeError
from deeplake_loader.transforms import RandomResizedCrop
from tests.common import damage, images
from tests.common.loader import keep

N, H, W, BATCH = 12, 24, 32, 4
CODECS = {
    "jpeg": ("jpeg", lambda i: images.make_jpeg(H, W, "RGB", seed=i)),
    "png-fast": ("png", lambda i: images.make_png("rgb8", H, W, seed=i)),
    "png-libpng": ("png", lambda i: images.make_png("rgb8-interlaced", H, W, seed=i)),
}
NOT_AN_IMAGE = ("neither JPEG nor PNG", "cannot identify image file")  # the kernel's words, or Pillow's
# how a sample is broken -> (bad bytes, text the message must hold: one of them if a tuple)
BREAKS = {
    "jpeg": {"not-an-image": lambda b: (damage.not_an_image(len(b)), NOT_AN_IMAGE),
             "libjpeg-error": damage.libjpeg_error,
             "libjpeg-warning": damage.libjpeg_warning},
    "png": {"not-an-image": lambda b: (damage.not_an_image(len(b)), NOT_AN_IMAGE),
            "libpng-error": damage.libpng_error},
}
PATHS = ["reader-item", "reader-bulk", "batch", "crop", "workers", "pil"]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """One dataset per codec: N images stored as the given files, + labels."""
    out = {}
    for name, (codec, make) in CODECS.items():
        path = tmp_path_factory.mktemp("bad_samples") / name
        ds = dl.empty(str(path))
        with ds:
            ds.create_tensor("images", htype="image", sample_compression=codec)
            ds.create_tensor("labels", htype="class_label")
            ds.extend({"images": [dl.sample.Sample(buffer=make(i), compression=codec) for i in range(N)],
                       "labels": list(range(N))})
        out[name] = path
    return out


def _copy(src, tmp_path):
    dst = tmp_path / "ds"
    shutil.copytree(src, dst)
    return dst


def _run(path, how, rows=None, batch=BATCH):
    """Read or load the dataset at path the given way; returns what it produced."""
    ds = dl.load(str(path), read_only=True)
    if how == "reader-item":
        return [ds.images[int(r)].numpy() for r in rows]
    if how == "reader-bulk":
        return ds.images.numpy(aslist=True)
    loader = ds.dataloader().batch(batch)
    kw = {}
    if how == "crop":
        loader = loader.transform({"images": RandomResizedCrop(16), "labels": None})
    elif how == "workers":
        loader = loader.transform({"images": keep, "labels": None})
        kw = {"num_workers": 2}
    elif how in ("pil", "tobytes"):
        kw = {"decode_method": {"images": how}}
    return [b for b in loader.numpy(num_threads=2, **kw)]


def _names(err, row):
    msg = str(err)
    assert "tensor 'images'" in msg and err.tensor == "images", msg
    assert f"sample index {row}" in msg and err.index == row, msg


def _cases():
    for codec_name, (codec, _) in CODECS.items():
        for brk in BREAKS[codec]:
            for how in PATHS:
                if brk == "libjpeg-warning" and how in ("crop", "pil"):
                    continue  # a warning at the end of the scan: a crop may stop before it, Pillow ignores it
                for row in ((5,) if how == "workers" else (4, 5, 7)):
                    yield pytest.param(codec_name, brk, how, row, id=f"{codec_name}-{brk}-{how}-row{row}")


@pytest.mark.parametrize("codec_name, brk, how, row", list(_cases()))
def test_decode_error_names_the_exact_row_and_keeps_the_library_reason(datasets, tmp_path, codec_name, brk, how,
                                                                        row):
    codec = CODECS[codec_name][0]
    path = _copy(datasets[codec_name], tmp_path)
    bad, text = BREAKS[codec][brk](CODECS[codec_name][1](row))
    damage.replace_samples(path, "images", {row: bad})
    with pytest.raises(DecodeError) as e:
        _run(path, how, rows=[row])
    _names(e.value, row)
    texts = text if isinstance(text, tuple) else (text,)
    assert any(t in str(e.value) for t in texts), f"the codec library's reason {text!r} is lost: {e.value}"


EMPTY_PATHS = PATHS + ["tobytes"]


@pytest.mark.parametrize("codec_name", ["jpeg", "png-fast"])
@pytest.mark.parametrize("how", EMPTY_PATHS)
def test_empty_payload_with_a_shape_is_corrupt_not_zeros(datasets, tmp_path, codec_name, how):
    """Row 5 stored with no bytes while the chunk's shape table says (24, 32, 3): never an all-zero
    image, a CorruptDatasetError naming the tensor and the row (and the chunk) on every path."""
    path = _copy(datasets[codec_name], tmp_path)
    damage.replace_samples(path, "images", {5: b""})
    with pytest.raises(CorruptDatasetError) as e:
        _run(path, how, rows=[5])
    _names(e.value, 5)
    assert "no stored bytes" in str(e.value) and "chunks/" in str(e.value), str(e.value)


@pytest.mark.parametrize("how", ["reader-item", "reader-bulk", "batch", "crop", "pil", "tobytes"])
def test_empty_sample_of_empty_shape_is_legal(tmp_path, how):
    """An appended None (shape (0, 0, 0), no bytes) stays an empty sample; its neighbours are exact.
    Under a RandomResizedCrop it is the transform's error, naming the row."""
    path = tmp_path / "ds"
    ds = dl.empty(str(path))
    arrs = [images.pattern(H, W, 3, seed=i) for i in range(N)]
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png")
        ds.create_tensor("labels", htype="class_label")
        ds.extend({"images": [None if i == 5 else arrs[i] for i in range(N)], "labels": list(range(N))})
    if how == "crop":  # a crop of nothing is an error, fused or not (the unfused transform raises it too)
        from deeplake_loader.errors import TransformError

        with pytest.raises(TransformError, match="cannot crop an empty image") as e:
            _run(path, how, rows=list(range(N)), batch=1)
        assert (e.value.tensor, e.value.index) == ("images", 5)
        return
    got = _run(path, how, rows=list(range(N)), batch=1)  # batch(1): an empty sample does not stack
    if how.startswith("reader"):
        values = got
    else:
        values = [s["images"] for b in got for s in b]  # unshuffled: rows in order (numpy() has no index)
        assert [int(s["labels"][0]) for b in got for s in b] == list(range(N))
    assert len(values) == N
    for i, v in enumerate(values):
        if how == "tobytes":
            assert (len(v) == 0) == (i == 5)
        elif how == "pil":
            assert (v is None) if i == 5 else np.array_equal(np.asarray(v), arrs[i])
        elif i == 5:
            assert np.asarray(v).size == 0
        else:
            assert np.array_equal(v, arrs[i]), i


@pytest.mark.parametrize("mode", ["numpy", "pytorch"])
def test_an_empty_image_never_drops_the_fused_crop_of_its_batch(tmp_path, mode):
    """One image stored empty (an appended None) among others: every batch without it comes
    cropped, and its own batch raises the error the unfused RandomResizedCrop raises, naming that
    row, instead of yielding uncropped images (or failing later in a confusing stack)."""
    from deeplake_loader.errors import TransformError

    ds = dl.empty(str(tmp_path / "ds"))
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        jpeg = [dl.sample.Sample(buffer=images.make_jpeg(H, W, "RGB", seed=i), compression="jpeg") for i in range(N)]
        ds.images.extend(jpeg[:5])
        ds.images.append(None)
        ds.images.extend(jpeg[6:])
    for crop in (RandomResizedCrop(8), lambda img: RandomResizedCrop(8)(img)):  # fused, and plain Python
        transform = {"images": crop} if mode == "numpy" else {"images": crop, "index": None}  # (numpy(): no index)
        loader = getattr(ds.dataloader().transform(transform).batch(BATCH), mode)()
        it = iter(loader)
        first = next(it)
        cropped = np.stack([s["images"] for s in first]) if mode == "numpy" else np.asarray(first["images"])
        assert cropped.shape == (BATCH, 8, 8, 3)
        with pytest.raises(TransformError, match="crop") as err:
            next(it)  # rows 4-7 hold the empty row 5
        assert (err.value.tensor, err.value.index) == ("images", 5)
        loader.close()
