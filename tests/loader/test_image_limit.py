"""Decompression bombs: an image whose header claims 60000x60000 is refused from its header, on
every decode path, before memory of its size is taken — a DecodeError naming the tensor, the row
and the claimed size, with the process's real peak memory (ru_maxrss, in a subprocess) staying
small. The limit is one setting, ``deeplake_loader.set_max_image_pixels(n)``."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import deeplake_loader as dl
from deeplake_loader._kernels import decode as K
from deeplake_loader.errors import DecodeError
from tests.common import images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATHS = ["reader-item", "reader-bulk", "batch", "crop", "workers", "pil"]

# Runs in a subprocess whose address space is capped at 4 GiB (so a regression fails with
# MemoryError instead of eating the machine). Row 1 of 3 claims 60000x60000; each path is tried
# in turn, batch(1) so the bomb is a batch of its own, after a run of the same path over the good
# rows (imports, pools); ru_maxrss before and after each.
_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    import numpy as np
    import deeplake_loader as dl
    from deeplake_loader.transforms import RandomResizedCrop
    from tests.common import damage, images
    from tests.common.loader import keep

    codec, path = sys.argv[1], sys.argv[2]
    good = images.make_jpeg(24, 32, "RGB", seed=1) if codec == "jpeg" else images.make_png("rgb8", 24, 32, seed=1)
    ds = dl.empty(path)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression=codec)
        ds.extend({"images": [dl.sample.Sample(buffer=good, compression=codec)] * 3})
    damage.replace_samples(path, "images", {1: (damage.lying_header(good, 60000, 60000), (60000, 60000, 3))})

    def run(how, rows):
        ds = dl.load(path, read_only=True)[rows]
        if how == "reader-item":
            return [ds.images[i].numpy() for i in range(len(ds))]
        if how == "reader-bulk":
            return ds.images.numpy(aslist=True)
        loader, kw = ds.dataloader().batch(1), {}
        if how == "crop":
            loader = loader.transform({"images": RandomResizedCrop(16)})
        elif how == "workers":
            loader, kw = loader.transform({"images": keep}), {"num_workers": 2}
        elif how == "pil":
            kw = {"decode_method": {"images": "pil"}}
        return [b for b in loader.numpy(num_threads=2, **kw)]

    out = {}
    for how in sys.argv[3:]:
        run(how, [0, 2])  # the same path over the good rows first: imports (torch) and pools are made
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            run(how, [0, 1, 2])
            res = {"error": None}
        except BaseException as e:
            res = {"error": type(e).__name__, "message": str(e), "index": getattr(e, "index", None),
                   "tensor": getattr(e, "tensor", None)}
        res["grew_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        out[how] = res
    print(json.dumps(out))
""")


@pytest.fixture(scope="module", params=["jpeg", "png"])
def bomb_results(request, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("bomb") / request.param)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("DEEPLAKE_LOADER_MAX_IMAGE_PIXELS", None)
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, request.param, path] + PATHS, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return request.param, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("how", PATHS)
def test_bomb_refused_from_its_header_with_small_peak_memory(bomb_results, how):
    codec, results = bomb_results
    r = results[how]
    assert r["error"] == "DecodeError", f"{codec} {how}: {r}"
    assert r["tensor"] == "images" and r["index"] == 1, r
    assert "60000x60000" in r["message"] and "sample index 1" in r["message"], r["message"]
    # the real peak grew by far less than one bomb row (60000 x 3 bytes x 16 rows is 2.9 MB; the
    # image itself would be 10.8 GB): 64 MiB leaves room for imports and worker start-up
    assert r["grew_kib"] < 64 * 1024, f"{codec} {how}: peak RSS grew {r['grew_kib'] / 1024:.0f} MiB"


@pytest.fixture
def limit():
    """Restores the default limit (and the environment) after a test that changes it."""
    yield
    dl.set_max_image_pixels(None)
    os.environ.pop(K.MAX_PIXELS_ENV, None)


SAMPLES = {
    "jpeg": images.make_jpeg(24, 32, "RGB", seed=3),
    "png-fast": images.make_png("rgb8", 24, 32, seed=3),
    "png-libpng": images.make_png("rgb8-interlaced", 24, 32, seed=3),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_set_max_image_pixels_applies_to_every_kernel_entry_point(limit, name):
    buf = SAMPLES[name]
    calls = {
        "image_info": lambda: K.image_info(buf),
        "decode": lambda: K.decode([buf]),
        "decode_batch": lambda: K.decode_batch([buf], np.empty((1, 24, 32, 3), np.uint8)),
        "decode_crop_batch": lambda: K.decode_crop_batch([buf], [(0, 0, 24, 32)], [0], np.empty((1, 8, 8, 3), np.uint8)),
    }
    dl.set_max_image_pixels(24 * 32)  # exactly the image: allowed
    assert dl.get_max_image_pixels() == 768
    for call in calls.values():
        call()
    dl.set_max_image_pixels(24 * 32 - 1)
    for what, call in calls.items():
        with pytest.raises(DecodeError, match=r"claims 24x32 \(768 pixels\), over the limit of 767") as e:
            call()
        assert e.value.status == K.TOO_BIG, what
    dl.set_max_image_pixels(None)
    assert dl.get_max_image_pixels() == K.DEFAULT_MAX_PIXELS
    calls["decode"]()


@pytest.mark.parametrize("bad", [0, -5, 2.5, "100", True])
def test_set_max_image_pixels_rejects_nonsense(limit, bad):
    with pytest.raises(ValueError, match="positive int"):
        dl.set_max_image_pixels(bad)


def test_limit_reaches_the_pillow_paths_and_new_processes(limit, tmp_path):
    """bmp is decoded by Pillow (header read lazily, then checked); decode_method='pil' is checked
    by the kernel's header probe; a process started afterwards inherits the setting."""
    path = str(tmp_path / "ds")
    ds = dl.empty(path)
    with ds:
        ds.create_tensor("bmp", htype="image", sample_compression="bmp")
        ds.create_tensor("png", htype="image", sample_compression="png")
        ds.extend({"bmp": [images.pattern(24, 32, 3, seed=i) for i in range(2)],
                   "png": [images.pattern(24, 32, 3, seed=i) for i in range(2)]})
    ds = dl.load(path, read_only=True)
    assert ds.bmp[1].numpy().shape == (24, 32, 3)
    dl.set_max_image_pixels(500)
    with pytest.raises(DecodeError, match="claims 24x32") as e:
        ds.bmp[1].numpy()
    assert e.value.index == 1 and e.value.tensor == "bmp"
    with pytest.raises(DecodeError, match="claims 24x32") as e:
        list(ds.dataloader().batch(2).numpy(tensors=["png"], decode_method={"png": "pil"}))
    assert e.value.index == 0 and e.value.tensor == "png"
    out = subprocess.run([sys.executable, "-c", "import deeplake_loader as d; print(d.get_max_image_pixels())"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))
    assert out.stdout.strip() == "500", out.stderr[-2000:]
