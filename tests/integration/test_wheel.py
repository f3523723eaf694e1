"""`make wheel` (scripts/wheel.sh): the repaired wheel carries its system libraries and works alone.

The wheel is built from the current source, installed into a fresh virtual environment (no system
site-packages; numpy, Pillow and lz4 from the package index), and then:
* every kernel resolves libjpeg-turbo, libpng and libdeflate from the wheel's deeplake_loader.libs/
  (readelf: NEEDED names and RPATH; ldd: the resolved paths; /proc/self/maps after an epoch);
* a short epoch over a generated JPEG dataset returns exactly the rows its index says, and so does
  one with a lambda transform in two worker processes, forked or fresh interpreters (what workers
  need, cloudpickle included, comes with the wheel's declared dependencies; no torch there);
* the conda recipe's own ``test:`` section (imports and commands) passes against it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.common.conda_recipe import render_recipe

ROOT = Path(__file__).resolve().parents[2]
LIBS = ("libjpeg", "libpng16", "libdeflate")
pytestmark = pytest.mark.slow


def _env(venv: Path) -> dict:
    """Environment of a program run in the fresh venv: its bin first, nothing from the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def _run(cmd, venv, cwd, timeout=600, **kw):
    out = subprocess.run(cmd, cwd=cwd, env=_env(venv), capture_output=True, text=True, timeout=timeout, **kw)
    assert out.returncode == 0, f"{cmd} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv, site-packages) with the repaired wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(["bash", str(ROOT / "scripts" / "wheel.sh"), str(tmp / "dist")], cwd=ROOT,
                           env=dict(os.environ, DEEPLAKE_LOADER_VENV=sys.prefix), capture_output=True,
                           text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    wheel = Path(build.stdout.strip().splitlines()[-1])
    assert re.fullmatch(r"deeplake_loader-[\d.]+-cp\d+-cp\d+-manylinux_\d+_\d+_\w+\.whl", wheel.name), wheel
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    py = str(venv / "bin" / "python")
    _run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)], venv, tmp, timeout=1200)
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], venv, tmp).strip())
    return venv, site, tmp


def test_installed_from_the_wheel_not_the_checkout(installed):
    venv, site, tmp = installed
    out = _run([str(venv / "bin" / "python"), "-c",
                "import deeplake_loader, deeplake_loader._kernels.decode as d; print(deeplake_loader.__file__); "
                "print(d.__file__)"], venv, tmp).split()
    assert all(Path(p).is_relative_to(site) for p in out), out
    assert not list((site / "deeplake_loader" / "_kernels").rglob("*.c")), "C sources in the wheel"


def test_every_kernel_resolves_the_libraries_from_inside_the_wheel(installed):
    venv, site, tmp = installed
    bundled = site / "deeplake_loader.libs"
    names = sorted(p.name for p in bundled.iterdir())
    for lib in LIBS:
        assert any(n.startswith(lib + "-") for n in names), f"{lib} is not in {bundled}: {names}"
    kernels = sorted((site / "deeplake_loader" / "_kernels").glob("*.so"))
    assert {k.name.split(".")[0] for k in kernels} == {p.stem for p in (ROOT / "deeplake_loader" / "_kernels").glob("*.pyx")}
    seen = set()
    for so in kernels:
        dyn = subprocess.run(["readelf", "-d", str(so)], capture_output=True, text=True, check=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn)
        ldd = subprocess.run(["ldd", str(so)], capture_output=True, text=True, check=True).stdout
        assert "not found" not in ldd, f"{so.name}: {ldd}"
        resolved = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
        for name in needed:
            lib = next((lib for lib in LIBS if name.startswith(lib)), None)
            if lib is None:
                continue
            seen.add(lib)
            assert (bundled / name).is_file(), f"{so.name} needs {name}, which the wheel does not carry"
            assert Path(resolved[name]).resolve() == (bundled / name).resolve(), f"{so.name}: {name} -> {resolved[name]}"
            assert re.search(r"R(UN)?PATH.*\$ORIGIN/\.\./\.\./deeplake_loader\.libs", dyn), f"{so.name}: {dyn}"
    assert seen == set(LIBS), f"no kernel links {set(LIBS) - seen}"


EPOCH = textwrap.dedent("""
    import json, sys
    import numpy as np
    from PIL import Image
    import deeplake_loader as deeplake

    n = 37
    ds = deeplake.empty(sys.argv[1])
    ds.create_tensor("images", htype="image", sample_compression="jpeg")
    ds.create_tensor("labels", htype="class_label")
    files = []
    for row in range(n):  # a flat image whose value says its row; the label is the row
        path = f"{sys.argv[1]}_{row}.jpg"
        Image.fromarray(np.full((16, 24, 3), 10 + 6 * row, np.uint8)).save(path, quality=95)
        files.append(deeplake.read(path))
    ds.extend({"images": files, "labels": list(range(n))})

    ds = deeplake.load(sys.argv[1], read_only=True)
    rows = []
    for batch in ds.dataloader().batch(5).shuffle().numpy(num_threads=2):  # a list of samples, as deeplake's
        assert all(s["images"].shape == (16, 24, 3) for s in batch), [s["images"].shape for s in batch]
        for image, label in ((s["images"], s["labels"]) for s in batch):
            row = int(label.reshape(-1)[0])
            assert np.abs(image.astype(int) - (10 + 6 * row)).max() <= 2, row
            rows.append(row)
    for context in ("fork", "spawn"):  # a lambda transform in worker processes, each way they start
        loader = ds.dataloader().transform(lambda s: {"row": s["labels"], "img": s["images"][:2]}).batch(4)
        loader = loader.numpy(num_workers=2)
        loader.multiprocessing_context = context
        got = sorted(int(s["row"].reshape(-1)[0]) for b in loader for s in b)  # lists of samples
        assert got == list(range(n)), (context, got)
        loader.close()
    maps = [line.split()[-1] for line in open("/proc/self/maps") if ".so" in line]
    print(json.dumps({"rows": rows, "maps": sorted(set(maps))}))
""")


def test_a_short_epoch_runs_on_the_bundled_libraries(installed):
    venv, site, tmp = installed
    (tmp / "epoch.py").write_text(EPOCH)
    out = json.loads(_run([str(venv / "bin" / "python"), "epoch.py", str(tmp / "ds")], venv, tmp).splitlines()[-1])
    assert sorted(out["rows"]) == list(range(37))
    for lib in LIBS:
        mapped = [m for m in out["maps"] if Path(m).name.startswith(lib)]
        ours = [m for m in mapped if Path(m).parent == site / "deeplake_loader.libs"]
        assert ours, f"{lib} not loaded from the wheel: {mapped}"
        assert not [m for m in mapped if m.startswith(("/usr/", "/lib"))], f"{lib} also loaded from the system: {mapped}"


def test_the_conda_recipe_test_section_passes_on_the_wheel(installed):
    venv, site, tmp = installed
    test = render_recipe()["test"]
    assert test["imports"] and test["commands"]
    for module in test["imports"]:
        _run([str(venv / "bin" / "python"), "-c", f"import {module}"], venv, tmp)
    for command in test["commands"]:
        _run(["bash", "-euo", "pipefail", "-c", command], venv, tmp)


def test_the_wheel_answers_import_deeplake_through_the_runner(installed):
    """deeplake's submodule names and the runner's shim travel in the wheel (package data)."""
    venv, site, tmp = installed
    (tmp / "uses_deeplake.py").write_text("import deeplake\nfrom deeplake.util.exceptions import DatasetHandlerError\n"
                                          "from deeplake.enterprise.dataloader import dataloader\n"
                                          "print(deeplake.__file__)\n")
    out = _run([str(venv / "bin" / "python"), "-m", "deeplake_loader.as_deeplake", "uses_deeplake.py"], venv, tmp)
    assert Path(out.strip()) == site / "deeplake_loader" / "__init__.py"
    shim = _run([str(venv / "bin" / "python"), "-m", "deeplake_loader.as_deeplake", "--path"], venv, tmp).strip()
    assert Path(shim) == site / "deeplake_loader" / "_shim"
