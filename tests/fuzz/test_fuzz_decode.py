"""Bounded fuzzing of the JPEG/PNG decode kernels: truncated, bit-flipped and byte-overwritten
files must give a clean DecodeError (or a successful decode), never a crash, a hang or a write
outside the output buffer. A few hundred cases in total; runs in seconds."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deeplake_loader._kernels import decode as K
from deeplake_loader.errors import DecodeError
from tests.common import images as I

pytestmark = pytest.mark.fuzz

SEEDS = {
    "jpeg-420": I.make_jpeg(24, 32, "RGB", seed=1),
    "jpeg-prog-444": I.make_jpeg(24, 32, "RGB", subsampling=0, progressive=True, seed=2),
    "jpeg-gray-restart": I.make_jpeg(24, 32, "L", restart_rows=1, seed=3),
    "jpeg-cmyk": I.make_jpeg(24, 32, "CMYK", seed=4),
    "png-rgb": I.make_png("rgb8", 24, 32, seed=5),
    "png-palette-trns": I.make_png("palette-trns", 24, 32, seed=6),
    "png-gray16-interlaced": I.make_png("gray16-interlaced", 24, 32, seed=7),
    "png-la16": I.make_png("la16", 24, 32, seed=8),
}
NAMES = sorted(SEEDS)
GUARD = 64
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def guarded(shape, dtype):
    """An output array inside a larger buffer whose margins hold a sentinel."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.full(n + 2 * GUARD, 0xA5, np.uint8)
    return raw, raw[GUARD:GUARD + n].view(dtype).reshape(shape)


def check_guard(raw):
    assert (raw[:GUARD] == 0xA5).all() and (raw[-GUARD:] == 0xA5).all(), "write outside the output"


def run_all_paths(name, data):
    info = K.image_info(SEEDS[name])
    shape = (1,) + info.shape
    for strict in (True, False):
        raw, out = guarded(shape, info.dtype)
        try:
            K.decode_batch([data], out, strict=strict)
        except DecodeError as e:
            assert e.position == 0 and str(e)
        check_guard(raw)
    if info.dtype == np.uint8:
        raw, out = guarded((1, 9, 11, info.channels), np.uint8)
        try:
            K.decode_crop_batch([data], [(2, 3, 20, 25)], [1], out, strict=False)
        except DecodeError as e:
            assert e.position == 0
        check_guard(raw)
    try:
        K.image_info(data)
    except DecodeError:
        pass
    try:  # the batched probe: same verdict as the single one, for the damaged sample's position
        K.image_infos([SEEDS[name], data])
    except DecodeError as e:
        assert e.position == 1


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(frac=st.floats(0.0, 1.0))
def test_truncated(name, frac):
    src = SEEDS[name]
    run_all_paths(name, src[: int(len(src) * frac)])


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 7)), min_size=1, max_size=6))
def test_bit_flips(name, flips):
    b = bytearray(SEEDS[name])
    for pos, bit in flips:
        b[pos % len(b)] ^= 1 << bit
    run_all_paths(name, bytes(b))


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(pos=st.integers(0, 10**9), junk=st.binary(min_size=1, max_size=16))
def test_overwritten_bytes(name, pos, junk):
    b = bytearray(SEEDS[name])
    p = pos % len(b)
    b[p:p + len(junk)] = junk
    run_all_paths(name, bytes(b))


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff\xd8", b"\xff\xd8\xff\xd9", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30,
                                  bytes(range(256)) * 4, b"GIF89a" + b"\x00" * 100])
def test_non_images(data):
    for name in ("jpeg-420", "png-rgb"):
        with pytest.raises(DecodeError):
            K.decode_batch([data], np.empty((1, 24, 32, 3), np.uint8))
        with pytest.raises(DecodeError):
            K.decode_crop_batch([data], [(0, 0, 4, 4)], [0], np.empty((1, 4, 4, 3), np.uint8))
    with pytest.raises(DecodeError):
        K.image_info(data)


def test_lying_header_dimensions():
    """A JPEG whose SOF claims 65000x65000: every entry point refuses it from the header, before
    allocating anything of that size (the pixel limit; tests/unit/test_image_limit.py has more)."""
    src = bytearray(SEEDS["jpeg-420"])
    i = src.find(b"\xff\xc0")
    src[i + 5:i + 9] = (65000).to_bytes(2, "big") * 2
    for call in (lambda b: K.image_info(b), lambda b: K.decode([b]),
                 lambda b: K.decode_batch([b], np.empty((1, 24, 32, 3), np.uint8)),
                 lambda b: K.decode_crop_batch([b], [(0, 0, 8, 8)], [0], np.empty((1, 4, 4, 3), np.uint8))):
        with pytest.raises(DecodeError, match="claims 65000x65000") as e:
            call(bytes(src))
        assert e.value.status == K.TOO_BIG
