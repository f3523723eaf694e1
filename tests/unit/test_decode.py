"""Batch JPEG/PNG decode kernel (deeplake_loader._kernels.decode) against Pillow's decode.

Tolerances: JPEG max |diff| <= 1 and mean |diff| < 0.01 (both sides use libjpeg-turbo's ISLOW
IDCT and fancy upsampling, but Pillow bundles a different libjpeg-turbo release than the system
one we link); PNG must be exactly equal (lossless, no gamma applied on either side).
"""
import numpy as np
import pytest

from deeplake_loader._kernels import decode as K
from deeplake_loader.errors import DecodeError
from tests.common import images as I

JPEG_VARIANTS = I.jpeg_variants()
PNG_SIZES = [(1, 1), (7, 13), (64, 33)]


def _close_jpeg(ours, ref):
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= 1
    assert diff.mean() < 0.01


@pytest.mark.parametrize("name,kw", JPEG_VARIANTS, ids=[v[0] for v in JPEG_VARIANTS])
def test_jpeg_matches_pillow(name, kw):
    buf = I.make_jpeg(**kw, seed=3)
    ref = I.pillow_array(buf)
    info = K.image_info(buf)
    assert tuple(info) == ("jpeg",) + ref.shape and info.dtype == np.uint8
    out = [np.full(ref.shape, 7, np.uint8)]               # per-sample (list) path
    assert K.decode_batch([buf], out) == [None]
    _close_jpeg(out[0], ref)


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_jpeg_to_rgb_like_pillow_convert(mode):
    buf = I.make_jpeg(33, 47, mode, seed=4)
    out = K.decode([buf], channels=3)
    _close_jpeg(out[0], I.pillow_array(buf, channels=3))


def test_jpeg_rgb_into_one_channel_is_rejected():
    buf = I.make_jpeg(8, 8, "RGB")
    with pytest.raises(DecodeError, match="3-channel JPEG into 1"):
        K.decode_batch([buf], np.empty((1, 8, 8, 1), np.uint8))


@pytest.mark.parametrize("kind", I.PNG_KINDS)
@pytest.mark.parametrize("h,w", PNG_SIZES, ids=[f"{h}x{w}" for h, w in PNG_SIZES])
def test_png_equals_pillow(kind, h, w):
    buf = I.make_png(kind, h, w, seed=h + w)
    ref = I.pillow_array(buf)
    info = K.image_info(buf)
    assert tuple(info) == ("png",) + ref.shape and info.dtype == ref.dtype
    out = K.decode([buf])
    assert out.shape == (1,) + ref.shape and out.dtype == ref.dtype
    np.testing.assert_array_equal(out[0], ref)


def test_png_16bit_gray_is_uint16_like_pillow():
    buf = I.make_png("gray16", 5, 6, seed=9)
    out = K.decode([buf])
    assert out.dtype == np.uint16
    assert out.max() > 255                      # really 16-bit values, not stripped
    with pytest.raises(DecodeError, match="2-byte"):
        K.decode_batch([buf], np.empty((1, 5, 6, 1), np.uint8))


@pytest.fixture(scope="module")
def batch():
    """Twelve distinct same-size images, JPEG and PNG mixed, with their references."""
    bufs = [I.make_jpeg(37, 51, "RGB", quality=80 + i, seed=i) for i in range(8)]
    bufs += [I.make_png("rgb8", 37, 51, seed=100 + i) for i in range(4)]
    return bufs, [I.pillow_array(b) for b in bufs]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_batch_block_path(batch, threads):
    bufs, refs = batch
    out = np.zeros((len(bufs), 37, 51, 3), np.uint8)
    assert K.decode_batch(bufs, out, num_threads=threads) == [None] * len(bufs)
    for i, ref in enumerate(refs):               # sample i landed in slot i
        _close_jpeg(out[i], ref)


def test_one_and_two_threads_identical(batch):
    bufs, _ = batch
    a = K.decode(bufs, num_threads=1)
    b = K.decode(bufs, num_threads=2)
    np.testing.assert_array_equal(a, b)


def test_mixed_shapes_give_a_list():
    bufs = [I.make_jpeg(9, 11, "L", seed=1), I.make_png("rgba8", 5, 4, seed=2), I.make_jpeg(20, 3, seed=3)]
    out = K.decode(bufs, num_threads=2)
    assert isinstance(out, list) and [o.shape for o in out] == [(9, 11, 1), (5, 4, 4), (20, 3, 3)]
    for o, b in zip(out, bufs):
        _close_jpeg(o, I.pillow_array(b))


def test_memoryview_slices_are_read_in_place():
    a, b = I.make_jpeg(16, 24, seed=5), I.make_png("rgb8", 16, 24, seed=6)
    blob = b"xx" + a + b + b"yy"
    mv = memoryview(blob)
    views = [mv[2:2 + len(a)], mv[2 + len(a):2 + len(a) + len(b)]]
    out = K.decode(views)
    _close_jpeg(out[0], I.pillow_array(a))
    np.testing.assert_array_equal(out[1], I.pillow_array(b))


# ---- errors ------------------------------------------------------------------------------------

def test_error_names_batch_position_and_libjpeg_text(batch):
    bufs, _ = batch
    bad = list(bufs)
    bad[5] = bad[5][: len(bad[5]) // 2]
    out = np.zeros((len(bad), 37, 51, 3), np.uint8)
    with pytest.raises(DecodeError, match="Premature end of JPEG file") as ei:
        K.decode_batch(bad, out, num_threads=2)
    assert ei.value.position == 5
    assert "batch position 5" in str(ei.value)


def test_non_strict_returns_data_and_warning_text():
    buf = I.make_jpeg(64, 64, seed=2)
    cut = buf[: int(len(buf) * 0.7)]
    out = np.zeros((2, 64, 64, 3), np.uint8)
    warnings = K.decode_batch([buf, cut], out, strict=False)
    assert warnings[0] is None and "Premature end of JPEG file" in warnings[1]
    ref = I.pillow_array(buf)
    top = 16                                    # the first MCU rows survive the truncation
    assert np.abs(out[1, :top].astype(int) - ref[:top]).max() <= 1


@pytest.mark.parametrize("shape", [(1, 37, 52, 3), (1, 36, 51, 3), (1, 37, 51, 4)])
def test_output_shape_mismatch_is_an_error_not_an_overflow(shape):
    buf = I.make_jpeg(37, 51, seed=1)
    out = np.full(shape, 77, np.uint8)
    with pytest.raises(DecodeError) as ei:
        K.decode_batch([buf], out)
    assert ei.value.position == 0
    if shape[3] == 3:
        assert "37x51" in str(ei.value)
        assert (out == 77).all()                # nothing written


def test_png_shape_mismatch():
    buf = I.make_png("rgb8", 10, 10)
    with pytest.raises(DecodeError, match="PNG header says 10x10x3"):
        K.decode_batch([buf], np.empty((1, 10, 9, 3), np.uint8))


@pytest.mark.parametrize("buf,match", [(b"", "empty buffer"), (b"hello world, not an image", "neither JPEG nor PNG"),
                                       (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "truncated")])
def test_garbage_buffers(buf, match):
    with pytest.raises(DecodeError, match=match):
        K.decode_batch([buf], np.empty((1, 4, 4, 3), np.uint8))
    with pytest.raises(DecodeError):
        K.image_info(buf)


def test_bad_out_arguments():
    buf = I.make_jpeg(4, 4)
    with pytest.raises(ValueError, match="2 samples"):
        K.decode_batch([buf], np.empty((2, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="C-contiguous"):
        K.decode_batch([buf], np.empty((1, 4, 8, 3), np.uint8)[:, :, ::2])
    with pytest.raises(ValueError, match="uint8"):
        K.decode_batch([buf], np.empty((1, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="num_threads"):
        K.decode_batch([buf], np.empty((1, 4, 4, 3), np.uint8), num_threads=0)
    with pytest.raises(DecodeError, match="bytes-like") as ei:
        K.decode_batch([buf, 12], np.empty((2, 4, 4, 3), np.uint8))
    assert ei.value.position == 1


def test_empty_batch():
    assert K.decode_batch([], np.empty((0, 4, 4, 3), np.uint8)) == []


@pytest.mark.parametrize("kind", ["rgb8", "rgba16", "palette-trns", "gray16-interlaced", "pillow-L"])
def test_png_500x375_equals_pillow(kind):
    buf = I.make_png(kind, 375, 500, seed=11)
    ref = I.pillow_array(buf)
    out = [np.empty(ref.shape, ref.dtype)]
    K.decode_batch([buf], out, num_threads=2)
    np.testing.assert_array_equal(out[0], ref)


def test_image_info_on_a_memoryview_slice():
    buf = I.make_jpeg(13, 7, "L")
    mv = memoryview(b"\x00" * 5 + buf)[5:]
    info = K.image_info(mv)
    assert info == ("jpeg", 13, 7, 1) and info.shape == (13, 7, 1) and info.codec == "jpeg"


def _child_decode(bufs, q):
    a = K.decode(bufs, num_threads=2)
    out = np.zeros((len(bufs), 37, 51, 3), np.uint8)
    K.decode_crop_batch(bufs, [(0, 0, 37, 51)] * len(bufs), [1] * len(bufs), out, num_threads=2)
    q.put((a.tobytes(), out.tobytes()))


def test_forked_child_after_parallel_decode_does_not_hang(batch):
    """libgomp's thread team does not survive fork(); the kernel switches to Python threads in
    a child whose parent already ran a parallel region."""
    import multiprocessing as mp

    bufs, _ = batch
    parent = K.decode(bufs, num_threads=2)                  # parent runs an OpenMP region
    ref_crop = np.zeros((len(bufs), 37, 51, 3), np.uint8)
    K.decode_crop_batch(bufs, [(0, 0, 37, 51)] * len(bufs), [1] * len(bufs), ref_crop, num_threads=1)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_decode, args=(bufs, q))
    p.start()
    try:
        full, crop = q.get(timeout=60)
    finally:
        p.join(10)
        if p.is_alive():
            p.kill()
    assert full == parent.tobytes() and crop == ref_crop.tobytes()


def test_image_infos_batch_equals_per_sample_probes():
    """The batched header probe (one call, GIL released) gives what image_info gives sample by
    sample, over the JPEG variants and the PNG kinds (16-bit ones report 2 bytes per channel)."""
    bufs = [I.make_jpeg(**kw, seed=5) for _, kw in JPEG_VARIANTS] + [I.make_png(k, 9, 14, seed=2) for k in I.PNG_KINDS]
    got = K.image_infos(bufs)
    assert got.shape == (len(bufs), 5) and got.dtype == np.int64
    for row, b in zip(got.tolist(), bufs):
        info = K.image_info(b)
        assert row == [1 if info.codec == "jpeg" else 2, info.height, info.width, info.channels,
                       2 if info.dtype == np.uint16 else 1]
    assert K.image_infos([]).shape == (0, 5)


@pytest.mark.parametrize("bad,match", [(b"", "empty buffer"), (b"not an image at all", "neither JPEG nor PNG")])
def test_image_infos_names_the_failing_position(bad, match):
    good = I.make_jpeg(8, 8, "RGB")
    with pytest.raises(DecodeError, match=match) as info:
        K.image_infos([good, good, bad, good])
    assert info.value.position == 2
    truncated = I.make_png("rgb8", 20, 20)[:30]
    with pytest.raises(DecodeError) as info:
        K.image_infos([good, truncated])
    assert info.value.position == 1
