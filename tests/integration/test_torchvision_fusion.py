"""Fused torchvision pipelines against REAL torchvision (torch 2.14.1 + torchvision 0.29.1 in the
side venv of ``tests/common/tvenv.py``; the checks run there, ``tests/common/tv_fusion_checks.py``,
and report numbers that are asserted here).

What is held (README "Torchvision pipelines"):
* which Composes are fused, and that everything else says why not and runs per sample, giving
  torchvision's output exactly;
* a fused batch's type, dtype, layout, shape and range are torch.stack of torchvision's outputs;
* pixels: where torchvision resizes PIL images (ToPILImage first, the Deep Lake docs' Compose) the
  fused batch is bit for bit torchvision's; where it resizes uint8 tensors (v2 ToImage first) at
  most 1 level of 255 apart in 0.2 % of values; where it resizes float tensors (ToTensor first) at
  most 1 level apart (we resample bytes, torchvision floats);
* random parameters: the same distributions as torchvision's own get_params (KS and chi-square over
  20,000 draws, with a negative control that must be rejected), flips at rate p;
* the loader: seeded runs repeat, a resume repeats the rest, workers change nothing, collate_fn and
  batch_size=None see torchvision's per-sample types, the env var turns fusion off.
"""

from __future__ import annotations

import pytest

from tests.common import tvenv

pytestmark = [pytest.mark.torchvision, pytest.mark.slow]

CHECKS = tvenv.REPO_ROOT / "tests" / "common" / "tv_fusion_checks.py"

# largest differences allowed, in 8-bit levels (1 level = 1/255 before Normalize), by where the
# pipeline resizes: Pillow (bit-exact), torch's uint8 kernel, torch's float kernel
PIL_EXACT = 0.0
ONE_LEVEL = 1.0 + 1e-4  # float32 rounding of a 1-level step after Normalize
TOLERANCE = {  # name prefix -> (max levels, mean levels)
    "v1-pil": (PIL_EXACT, 0.0), "v1-png": (PIL_EXACT, 0.0), "v2-pil": (PIL_EXACT, 0.0), "docs-v1-pil": (PIL_EXACT, 0.0),
    "v1-totensor": (ONE_LEVEL, 0.35), "v1-piltotensor": (ONE_LEVEL, 0.15),
    "v2-toimage": (ONE_LEVEL, 0.01), "v2-gray": (ONE_LEVEL, 0.01),
}


def _tolerance(name):
    return next(v for k, v in sorted(TOLERANCE.items(), key=lambda kv: -len(kv[0])) if name.startswith(k))


@pytest.fixture(scope="module")
def tv_run(tmp_path_factory):
    """run(check) -> the check's report, each check run once per module in the side venv."""
    try:
        tvenv.tv_python()
    except tvenv.TVUnavailable as e:
        tvenv.skip_or_fail(str(e))
    workdir = tmp_path_factory.mktemp("tvfusion")
    cache = {}

    def run(check):
        if check not in cache:
            cache[check] = tvenv.run_tv(CHECKS, check, workdir, timeout=1200)
        return cache[check]

    return run


def test_recognised_pipelines_and_reasons(tv_run):
    rep = tv_run("recognise")
    fused = {k for k, v in rep.items() if v is None}
    expected_fused = {k for k in rep if ":" not in k}
    assert fused == expected_fused, {k: rep[k] for k in fused ^ expected_fused}
    reasons = {
        "unfused:colorjitter": "ColorJitter", "unfused:lambda": "Lambda", "unfused:grayscale": "Grayscale",
        "unfused:nearest": "interpolation", "unfused:bicubic-v2": "interpolation",
        "unfused:tensor-no-antialias": "antialias=False", "unfused:randomcrop-padding": "padding=4",
        "unfused:resize-max-size": "max_size", "unfused:two-resizes": "another resize",
        "unfused:ends-with-pil": "pil image", "unfused:normalize-uint8": "Normalize on a uint8",
        "unfused:resize-on-numpy": "numpy", "unfused:todtype-float64": "float64", "unfused:subclass": "MyResize",
        "unfused:randomapply": "RandomApply", "dataset:resize-int-on-mixed-sizes": "depends on each image's size",
        "dataset:center-crop-larger-than-smallest": "may not fit", "dataset:normalize-3-on-gray": "1-channel", "dataset:mixed-channels": "1..3 channels",
        "env:off": "DEEPLAKE_LOADER_FUSE_TORCHVISION",
    }
    for key, word in reasons.items():
        assert rep[key] is not None and word in rep[key], (key, rep[key])


def _assert_like_torchvision(name, r):
    assert r["got_dtype"] == r["want_dtype"] and r["got_shape"] == r["want_shape"], (name, r)
    max_levels, mean_levels = _tolerance(name)
    assert r["max_levels"] <= max_levels and r["mean_levels"] <= mean_levels + 1e-9, (name, r)
    lo, hi = r["want_range"]
    pad = 1.5 / 255 / 0.2  # a level after Normalize with the smallest std
    assert lo - pad <= r["got_range"][0] and r["got_range"][1] <= hi + pad, (name, r)


def test_deterministic_pipelines_match_torchvision(tv_run):
    rep = tv_run("pixels")
    assert len(rep) >= 14
    for name, r in rep.items():
        assert r["fused"], name
        assert r["got_type"] == "Tensor" and r["want_type"] == "Tensor", (name, r)
        _assert_like_torchvision(name, r)
    # the PIL flows are exact, not merely close
    exact = [n for n in rep if _tolerance(n)[0] == PIL_EXACT]
    assert len(exact) >= 8 and all(rep[n]["exact_fraction"] == 1.0 for n in exact)


def test_random_pipelines_match_torchvision_with_the_same_parameters(tv_run):
    rep = tv_run("random")
    assert "docs-v1-pil-rrc224-hflip-totensor-normalize" in rep
    for name, r in rep.items():
        _assert_like_torchvision(name, r)
    docs = rep["docs-v1-pil-rrc224-hflip-totensor-normalize"]
    assert docs["exact_fraction"] == 1.0 and docs["got_dtype"] == "float32" and docs["got_shape"][1:] == [3, 224, 224]
    # the draws are not degenerate: both flips and several crop sizes occurred
    assert {f[0] for f in docs["flips"]} == {0, 1}
    assert len({(b[2] - b[0], b[3] - b[1]) for b in docs["boxes"]}) == len(docs["boxes"])


def test_random_parameters_have_torchvisions_distribution(tv_run):
    rep = tv_run("distribution")
    for case in ("375x500", "500x375", "60x600-fallbacks", "40x50-scale-ratio"):
        r = rep[case]
        for stat in ("area", "aspect", "top", "left"):
            d, p = r[stat]
            assert p > 1e-3, (case, stat, d, p)
        if "hw_chi2" in r:
            assert r["hw_chi2"][2] > 1e-3, (case, r["hw_chi2"])
        ours, theirs = r["fallback_rate"]
        assert abs(ours - theirs) < 0.02, (case, ours, theirs)
    assert rep["60x600-fallbacks"]["fallback_rate"][0] > 0.5  # the fallback path is exercised
    # the same statistics reject a different scale range (the test can fail)
    assert rep["negative-control-scale"]["area"][1] < 1e-6
    assert all(abs(z) < 4 for z in rep["flips"]["z"]), rep["flips"]
    assert rep["randomcrop"]["top"][2] > 1e-3 and rep["randomcrop"]["left"][2] > 1e-3, rep["randomcrop"]


def test_unrecognised_pipelines_run_per_sample_exactly(tv_run):
    rep = tv_run("unfused")
    assert set(rep) == {"colorjitter", "lambda", "grayscale", "nearest", "tensor-no-antialias"}
    for name, r in rep.items():
        assert not r["fused"] and r["runs_per_sample"] and r["equal"], (name, r)


def test_loader_with_the_docs_compose(tv_run):
    rep = tv_run("loader")
    assert rep["fused"] and rep["chain_fused"]
    assert rep["batch"] == rep["unfused_batch"] == {"type": "Tensor", "dtype": "torch.float32",
                                                     "shape": [8, 3, 224, 224], "labels": ["torch.int64", [8, 1]]}
    assert rep["seeded_repeat_with_workers"] and rep["other_seed_differs"] and rep["resume_equal"]
    assert rep["env_off_fused"] is False
    lo, hi = rep["range"]
    assert rep["range_limits"][0] - 1e-5 <= lo < -1.5 and 2.0 < hi <= rep["range_limits"][1] + 1e-5
    c = rep["collate"]
    assert c["fused"] and c["types"] == [c["torchvision_sample_type"]] * 4 == ["Image"] * 4
    assert c["batch"] == ["Tensor", [4, 3, 224, 224]]
    assert rep["unbatched"] == {"fused": True, "type": "Tensor", "shape": [3, 224, 224]}
    assert rep["numpy_terminal_fused"] is False


def test_bad_samples_on_the_fused_path_name_tensor_and_row(tv_run):
    rep = tv_run("errors")
    assert all(r["fused"] and r["type"] == "DecodeError" and r["tensor"] == "images" for r in rep.values()), rep
    assert rep["libjpeg_error"]["index"] == 13 and rep["libjpeg_error"]["reason"] in rep["libjpeg_error"]["message"]
    assert rep["pixel_limit"]["index"] == 0 and "over the limit" in rep["pixel_limit"]["message"]
    assert rep["channels_lie"]["index"] == 6 and "meta says 3" in rep["channels_lie"]["message"]
