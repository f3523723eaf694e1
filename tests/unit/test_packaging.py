"""The conda recipe stays in step with pyproject.toml and with the kernels the build produces.

conda-build cannot run here (no conda channels), so the recipe is rendered the way conda-build
renders it (tests/common/conda_recipe.py) and checked against the package it describes; its ``test:``
section runs against the installed wheel in tests/integration/test_wheel.py.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.common.conda_recipe import render_recipe

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - 3.9/3.10
    tomllib = pytest.importorskip("tomli")

jinja2 = pytest.importorskip("jinja2")
yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
# pyproject distribution name -> conda-forge package name, where they differ
CONDA_NAME = {"Pillow": "pillow", "lz4": "python-lz4", "tensorflow-cpu": "tensorflow", "torch": "pytorch"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0]


@pytest.fixture(scope="module")
def recipe() -> dict:
    return render_recipe()


def _names(reqs) -> set[str]:
    return {_requirement_name(r) for r in reqs}


def test_recipe_version_and_name_come_from_pyproject(recipe):
    project = _pyproject()["project"]
    assert recipe["package"]["version"] == project["version"]
    assert recipe["package"]["name"] == project["name"]


def test_recipe_run_requirements_cover_every_dependency(recipe):
    run = _names(recipe["requirements"]["run"])
    for dep in _pyproject()["project"]["dependencies"]:
        name = _requirement_name(dep)
        assert CONDA_NAME.get(name, name) in run, f"{name} is a dependency but not a conda run requirement"


def test_recipe_host_has_every_build_requirement(recipe):
    host = _names(recipe["requirements"]["host"])
    for dep in _pyproject()["build-system"]["requires"]:
        assert _requirement_name(dep) in host, f"build requirement {dep} missing from conda host"
    assert {"libjpeg-turbo", "libpng", "libdeflate"} <= host
    assert {"libjpeg-turbo", "libpng", "libdeflate"} <= _names(recipe["requirements"]["run"])


def test_recipe_entry_point_is_the_console_script(recipe):
    scripts = _pyproject()["project"]["scripts"]
    assert recipe["build"]["entry_points"] == [f"{k} = {v}" for k, v in scripts.items()]


def test_recipe_imports_every_kernel_and_each_imports(recipe):
    kernels = sorted(p.stem for p in (ROOT / "deeplake_loader" / "_kernels").glob("*.pyx"))
    imports = recipe["test"]["imports"]
    assert sorted(m.rsplit(".", 1)[1] for m in imports if "._kernels." in m) == kernels
    for module in imports:
        importlib.import_module(module)


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "deeplake_loader", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "info" in out.stdout and "ingest" in out.stdout and "bench" in out.stdout
