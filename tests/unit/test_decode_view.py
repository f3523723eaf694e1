"""The fused view decode behind torchvision pipelines (``decode_view_batch``), its CHW layout and
value table, the resampler's limits and pass orders, and the plan's geometry (``fusion._State``
and steps; no torchvision needed here — tests/integration/test_torchvision_fusion.py compares with
real torchvision).

Reference: Pillow. A view whose limits are its own box is ``img.crop(box).resize(size)``; a view
whose limits are the whole image is ``img.resize(virtual size).crop(window)``. With a full-size
JPEG decode (``dct=0``) and the installed Pillow's pass order the bytes are Pillow's exactly.
"""

import io

import numpy as np
import pytest
from PIL import Image

from deeplake_loader import fusion
from deeplake_loader._kernels import decode as K
from deeplake_loader.errors import DecodeError
from tests.common import images as I

ORDER = fusion._pillow_order()


def chw(a):
    return np.ascontiguousarray(np.asarray(a).reshape(a.shape[0], a.shape[1], -1).transpose(2, 0, 1))


def view(bufs, boxes, limits, size, channels=3, flips=None, lut=None, dct=0, order=ORDER):
    n = len(bufs)
    out = np.empty((n, channels) + tuple(size), np.uint8 if lut is None else np.float32)
    flips = np.zeros((n, 2), np.uint8) if flips is None else np.asarray(flips, np.uint8)
    K.decode_view_batch(bufs, np.asarray(boxes, float), np.asarray(limits, np.int64), flips, out, lut,
                        num_threads=2, dct=dct, order=order)
    return out


def pillow(buf):
    im = Image.open(io.BytesIO(buf))
    im.load()
    return im


# ---- crop then resize (limits = box) ---------------------------------------------------------

@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("seed", range(6))
def test_crop_then_resize_is_pillows_bytes(mode, seed):
    rng = np.random.default_rng(seed)
    H, W = 375, 500
    buf = I.make_jpeg(H, W, mode=mode, content="photo", seed=seed)
    th, tw = [(224, 224), (160, 128), (64, 300)][seed % 3]
    boxes, want = [], []
    for _ in range(4):
        h, w = int(rng.integers(20, H + 1)), int(rng.integers(20, W + 1))
        y, x = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        boxes.append([y, x, y + h, x + w])
        want.append(chw(np.asarray(pillow(buf).crop((x, y, x + w, y + h)).resize((tw, th), Image.BILINEAR))))
    got = view([buf] * 4, boxes, boxes, (th, tw), channels=1 if mode == "L" else 3)
    np.testing.assert_array_equal(got, np.stack(want))


@pytest.fixture(params=[True, False], ids=["avx2", "portable"])
def simd(request):
    """Run with the resampler's AVX2 rows (where the CPU has them) and with portable C only."""
    K._resample_use_simd(request.param)
    yield request.param
    K._resample_use_simd(True)


def test_tall_reductions_follow_the_installed_pillows_pass_order(simd):
    """Boxes whose height shrinks far more than their width: Pillow 13 resamples those vertically
    first; the other order rounds differently (so this compares the order, not just the filter)."""
    buf = I.make_jpeg(375, 500, content="photo", seed=3)
    boxes = [[11, 97, 324, 185], [2, 99, 358, 283], [5, 157, 371, 231]]  # h 313..366 -> 224, w 74..184 -> 224
    want = np.stack([chw(np.asarray(pillow(buf).crop((b[1], b[0], b[3], b[2])).resize((224, 224), Image.BILINEAR)))
                     for b in boxes])
    got = view([buf] * 3, boxes, boxes, (224, 224))
    np.testing.assert_array_equal(got, want)
    other = view([buf] * 3, boxes, boxes, (224, 224), order="hfirst" if ORDER == "pillow13" else "pillow13")
    assert (other != want).any()
    assert K._vertical_first_py("pillow13", 313, 88, 224, 224) and not K._vertical_first_py("hfirst", 313, 88, 224, 224)
    # strictly more than twice the width's reduction (measured on Pillow 13.0.0)
    assert not K._vertical_first_py("pillow13", 300, 200, 200, 150)
    assert K._vertical_first_py("pillow13", 300, 200, 199, 150)
    assert not K._vertical_first_py("pillow13", 200, 300, 250, 100)  # an enlargement never


def test_limits_equal_to_the_box_are_the_crop_decode():
    """decode_crop_batch (our RandomResizedCrop) is the special case limits == box, DCT scaling on."""
    rng = np.random.default_rng(7)
    bufs = [I.make_jpeg(300, 400, content="photo", seed=s) for s in range(3)] + [I.make_png("rgb", 120, 90, seed=1)]
    shapes = [(300, 400)] * 3 + [(120, 90)]
    boxes, flips = [], rng.integers(0, 2, 4).astype(np.uint8)
    for h, w in shapes:
        bh, bw = int(rng.integers(40, h)), int(rng.integers(40, w))
        boxes.append([int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw)), bh, bw])
    crop = np.empty((4, 48, 64, 3), np.uint8)
    K.decode_crop_batch(bufs, np.array(boxes), flips, crop)
    lims = [[y, x, y + h, x + w] for y, x, h, w in boxes]
    got = view(bufs, lims, lims, (48, 64), flips=np.stack([flips, np.zeros(4, np.uint8)], 1), dct=1, order="hfirst")
    np.testing.assert_array_equal(got, crop.transpose(0, 3, 1, 2))


# ---- resize then crop (limits = the whole image) ------------------------------------------------

@pytest.mark.parametrize("shape,resize,window", [
    ((375, 500), (256, 341), (16, 58, 224, 224)),   # Resize(256) + CenterCrop(224)
    ((500, 375), (341, 256), (58, 16, 224, 224)),
    ((333, 517), (256, 397), (0, 0, 256, 397)),      # the whole resized image
    ((400, 120), (110, 100), (7, 3, 90, 80)),        # a tall reduction (vertical first in Pillow 13)
    ((64, 80), (150, 190), (10, 20, 100, 120)),      # an enlargement
])
@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_window_of_a_resize_is_pillows_resize_then_crop(shape, resize, window, kind, simd):
    H, W = shape
    rh, rw = resize
    top, left, th, tw = window
    buf = I.make_png("rgb", H, W, seed=4) if kind == "png" else I.make_jpeg(H, W, content="photo", seed=4)
    want = np.asarray(pillow(buf).resize((rw, rh), Image.BILINEAR).crop((left, top, left + tw, top + th)))
    sy, sx = H / rh, W / rw
    box = [top * sy, left * sx, (top + th) * sy, (left + tw) * sx]
    got = view([buf], [box], [[0, 0, H, W]], (th, tw))
    np.testing.assert_array_equal(got[0], chw(want))


def test_flips_and_layout():
    buf = I.make_png("rgb", 60, 80, seed=2)
    full = np.asarray(pillow(buf))
    lims = [[5, 10, 45, 70]] * 4
    got = view([buf] * 4, lims, lims, (40, 60), flips=[[0, 0], [1, 0], [0, 1], [1, 1]])
    crop = full[5:45, 10:70]  # same size: a copy
    for i, f in enumerate([crop, crop[:, ::-1], crop[::-1], crop[::-1, ::-1]]):
        np.testing.assert_array_equal(got[i], chw(f))


def test_value_table_gives_every_float_exactly():
    buf = I.make_jpeg(64, 96, content="photo", seed=5)
    lims = [[0, 0, 64, 96]]
    raw = view([buf], lims, lims, (32, 48))[0]
    mean, std = np.float32([0.485, 0.456, 0.406]), np.float32([0.229, 0.224, 0.225])
    lut = (np.tile(np.arange(256, dtype=np.float32), (3, 1)) / np.float32(255) - mean[:, None]) / std[:, None]
    got = view([buf], lims, lims, (32, 48), lut=lut)[0]
    assert got.dtype == np.float32 and got.shape == (3, 32, 48)
    np.testing.assert_array_equal(got, ((raw.astype(np.float32) / np.float32(255)) - mean[:, None, None]) / std[:, None, None])
    gray = I.make_jpeg(40, 50, mode="L", seed=1)
    g = view([gray], [[0, 0, 40, 50]], [[0, 0, 40, 50]], (20, 25), channels=1,
             lut=np.arange(256, dtype=np.float32)[None] * 2)
    assert g.shape == (1, 1, 20, 25) and (g % 2 == 0).all()
    src = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(K._layout_chw_py(src, None, True), src[::-1].transpose(2, 0, 1))


def test_resampler_limits_are_checked():
    src = np.zeros((10, 12, 3), np.uint8)
    np.testing.assert_array_equal(K._resample_bilinear_py(src, (1, 1, 9, 11), (4, 5), limits=(0, 0, 10, 12)),
                                  np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="limits"):
        K._resample_bilinear_py(src, (1, 1, 9, 11), (4, 5), limits=(2, 0, 10, 12))  # box outside its limits


# ---- bad input ------------------------------------------------------------------------------

def test_bad_views_name_the_sample():
    good = I.make_jpeg(40, 50, seed=1)
    png = I.make_png("rgb", 40, 50, seed=1)
    ok = [0, 0, 40, 50]
    for bad_box, bad_lim in [([0, 0, 41, 50], [0, 0, 40, 50]),      # box past the limits
                             ([0, 0, 40, 50], [0, 0, 41, 50]),      # limits past the image
                             ([np.nan, 0, 40, 50], [0, 0, 40, 50]),
                             ([10, 0, 10, 50], [0, 0, 40, 50])]:    # empty box
        for buf in (good, png):
            with pytest.raises(DecodeError, match="crop box") as e:
                view([good, buf], [ok, bad_box], [ok, bad_lim], (8, 8))
            assert e.value.position == 1
    with pytest.raises(DecodeError) as e:
        view([good, good[:200]], [ok, ok], [ok, ok], (8, 8))
    assert e.value.position == 1
    out = np.empty((1, 3, 8, 8), np.uint8)
    box, lim, fl = np.array([ok], float), np.array([ok]), np.zeros((1, 2), np.uint8)
    with pytest.raises(ValueError, match="lut"):
        K.decode_view_batch([good], box, lim, fl, np.empty((1, 3, 8, 8), np.float32), np.zeros((2, 256), np.float32))
    with pytest.raises(ValueError, match="float32"):
        K.decode_view_batch([good], box, lim, fl, out, np.zeros((3, 256), np.float32))
    with pytest.raises(ValueError, match="flips"):
        K.decode_view_batch([good], box, lim, np.zeros(1, np.uint8), out)
    with pytest.raises(ValueError, match="order"):
        K.decode_view_batch([good], box, lim, fl, out, order="sideways")
    with pytest.raises(DecodeError, match="channels"):
        K.decode_view_batch([good], box, lim, fl, np.empty((1, 2, 8, 8), np.uint8))


# ---- the plan's geometry (no torchvision) ---------------------------------------------------------

def run(steps, hw, seed=0):
    st = fusion._State(hw)
    rng = np.random.default_rng(seed)
    for s in steps:
        s.apply(st, rng)
    return st


def test_resize_then_center_crop_geometry():
    st = run([fusion._Resize((256,)), fusion._CenterCrop((224, 224))], [(375, 500), (500, 375)])
    assert st.h.tolist() == [224, 224] and st.w.tolist() == [224, 224]
    # 375x500 -> 256x341, crop at (16, round(58.5) = 58); box in source pixels; limits: the image
    np.testing.assert_allclose(st.box[0], [16 * 375 / 256, 58 * 500 / 341, 240 * 375 / 256, 282 * 500 / 341])
    assert st.lim.tolist() == [[0, 0, 375, 500], [0, 0, 500, 375]]


def test_flip_before_a_crop_mirrors_the_box():
    st = run([fusion._Flip(0, 1.0), fusion._CenterCrop((10, 11))], [(20, 30)])
    # centre crop of the mirrored image: left = round(19 / 2) = 10 there, 30 - 10 - 11 = 9 here
    assert st.lim.tolist() == [[5, 9, 15, 20]] and st.flip.tolist() == [[True, False]]
    st = run([fusion._CenterCrop((10, 11)), fusion._Flip(0, 1.0)], [(20, 30)])
    assert st.lim.tolist() == [[5, 10, 15, 21]]


def test_random_resized_crop_is_reproducible_and_falls_back_to_the_centre():
    a = run([fusion._RandomResizedCrop((8, 8), (0.08, 1.0), (3 / 4, 4 / 3))], [(375, 500)] * 64, seed=3)
    b = run([fusion._RandomResizedCrop((8, 8), (0.08, 1.0), (3 / 4, 4 / 3))], [(375, 500)] * 64, seed=3)
    assert (a.lim == b.lim).all() and (a.h == 8).all()
    assert (a.lim[:, 2] <= 375).all() and (a.lim[:, 3] <= 500).all() and (a.lim[:, :2] >= 0).all()
    # a 10x1000 strip: no attempt fits within the ratio, the centre crop at ratio 4/3 does
    c = run([fusion._RandomResizedCrop((8, 8), (0.5, 1.0), (3 / 4, 4 / 3))], [(10, 1000)] * 5, seed=1)
    assert c.lim.tolist() == [[0, 493, 10, 506]] * 5  # w = round(10 * 4/3) = 13, left = (1000 - 13) // 2


def test_views_reject_images_the_meta_did_not_announce():
    plan = fusion.Plan((fusion._CenterCrop((50, 50)),), (), "uint8", "tensor")
    fi = fusion.FusedImages(plan, 3)
    with pytest.raises(DecodeError, match="does not fit") as e:
        fi.views([(60, 60), (40, 80)], np.random.default_rng(0))
    assert e.value.position == 1
    grow = fusion.FusedImages(fusion.Plan((fusion._Resize((30,)),), (), "uint8", "tensor"), 3)
    with pytest.raises(DecodeError, match="differs") as e:
        grow.views([(60, 60), (60, 90)], np.random.default_rng(0))
    assert e.value.position == 1
