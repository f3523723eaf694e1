"""Harness around REAL torchvision, which lives in a side virtual environment: the main venv keeps
torch 2.13.0, beside which no torchvision wheel on this machine imports, so the tests that compare
our fused torchvision pipelines with torchvision itself run their scripts in a venv holding
``torch==2.14.1`` and ``torchvision==0.29.1`` (the builds on this machine's local package index; CUDA
builds that run on CPU, ~5.5 GB, ~5 minutes to install).

Our package is not installed there: the side interpreter runs with this worktree on ``PYTHONPATH``,
so it imports the very code (and the in-place built kernels) under test. That works because the
venv gets the main venv's own numpy and Pillow versions (the kernels are built against that numpy;
the fused path's Pillow-compatible resample is compared with that Pillow) plus the package's
runtime dependencies; the venv's name carries those versions, so a main venv that moves to another
numpy or Pillow gets a side venv of its own.

Public API (like ``tests/common/dl3.py``, whose file lock and CI rule it shares):

* ``tv_python() -> str``: the side interpreter (``DEEPLAKE_LOADER_TV_PYTHON`` overrides), found or
  built once under an ``fcntl`` lock in ``~/.cache/deeplake_loader/venv-tv-<versions>``, with a
  marker written after a verified install. Raises ``TVUnavailable`` with the reason otherwise.
* ``run_tv(script, *args, timeout=...) -> object``: run a script (text, with ``emit(obj)`` for a
  JSON result, or a ``.py`` path writing JSON to ``$TV_RESULT``) in the side venv.
* ``skip_or_fail(reason)``: fail in CI, skip elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib import metadata
from pathlib import Path

import pytest

from .dl3 import CACHE_DIR, _file_lock, in_ci

TORCH_VERSION = "2.14.1"
TORCHVISION_VERSION = "0.29.1"
ENV_PYTHON = "DEEPLAKE_LOADER_TV_PYTHON"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
MARKER_NAME = ".deeplake_loader_ready"
# what `import deeplake_loader` and its loaders need besides numpy and Pillow (pinned below)
RUNTIME_PACKAGES = ["lz4>=4", "tqdm>=4.60", "cloudpickle>=2.2", "psutil>=5"]


def _pins() -> dict:
    """The main venv's numpy and Pillow versions: the side venv gets the same."""
    return {"numpy": metadata.version("numpy"), "Pillow": metadata.version("Pillow")}


def venv_dir() -> Path:
    pins = _pins()
    return CACHE_DIR / (f"venv-tv-{TORCH_VERSION}-{TORCHVISION_VERSION}"
                        f"-np{pins['numpy']}-pil{pins['Pillow']}-py{sys.version_info[0]}{sys.version_info[1]}")


def packages() -> list:
    pins = _pins()
    return [f"torch=={TORCH_VERSION}", f"torchvision=={TORCHVISION_VERSION}", f"numpy=={pins['numpy']}",
            f"Pillow=={pins['Pillow']}", *RUNTIME_PACKAGES]


class TVUnavailable(RuntimeError):
    """The torchvision side venv is missing and could not be built."""


class TVScriptError(RuntimeError):
    """A script run in the torchvision venv failed; the message carries its stderr."""

    def __init__(self, message: str, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        super().__init__(message)


def skip_or_fail(reason: str):
    """Tests that need real torchvision fail in CI with the reason, and skip with it elsewhere."""
    if in_ci():
        pytest.fail(f"torchvision {TORCHVISION_VERSION} side venv unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"torchvision {TORCHVISION_VERSION} side venv unavailable: {reason}")


def _env(with_repo: bool = True) -> dict:
    env = dict(os.environ)
    for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(k, None)
    if with_repo:
        env["PYTHONPATH"] = str(REPO_ROOT)
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def _check_code() -> str:
    pins = _pins()
    return ("import sys, numpy, PIL, torch, torchvision, deeplake_loader; "
            "from deeplake_loader._kernels import decode; "
            f"sys.exit(0 if torch.__version__.split('+')[0] == '{TORCH_VERSION}' "
            f"and torchvision.__version__.split('+')[0] == '{TORCHVISION_VERSION}' "
            f"and numpy.__version__ == '{pins['numpy']}' and PIL.__version__ == '{pins['Pillow']}' else 3)")


def _works(python: str) -> tuple:
    try:
        r = subprocess.run([python, "-c", _check_code()], env=_env(), capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    return r.returncode == 0, (r.stderr or r.stdout)[-2000:]


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _create_venv(venv: Path) -> None:
    steps = []
    if not _venv_python(venv).exists():
        steps.append([sys.executable, "-m", "venv", str(venv)])
    steps.append([str(_venv_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                  *packages()])
    for cmd in steps:
        try:
            r = subprocess.run(cmd, env=_env(with_repo=False), capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise TVUnavailable(f"{' '.join(cmd)} failed: {e}") from e
        if r.returncode != 0:
            raise TVUnavailable(f"{' '.join(cmd)} exited with {r.returncode}:\n{(r.stderr or r.stdout)[-3000:]}")


_PYTHON_CACHE: dict = {}


def tv_python() -> str:
    """Path of the torchvision side interpreter (found, or built once under a file lock)."""
    if "python" in _PYTHON_CACHE:
        return _PYTHON_CACHE["python"]
    override = os.environ.get(ENV_PYTHON)
    if override:
        ok, why = _works(override)
        if not ok:
            raise TVUnavailable(f"${ENV_PYTHON}={override} cannot import torch {TORCH_VERSION}, torchvision "
                                f"{TORCHVISION_VERSION} and deeplake_loader: {why}")
        _PYTHON_CACHE["python"] = override
        return override
    venv = venv_dir()
    marker = venv / MARKER_NAME
    python = str(_venv_python(venv))
    with _file_lock(CACHE_DIR / f"{venv.name}.lock"):
        if not (marker.exists() and _venv_python(venv).exists()):
            ok, why = _works(python)
            if not ok:
                try:
                    _create_venv(venv)
                except TVUnavailable:
                    if not venv.exists():
                        raise
                    shutil.rmtree(venv, ignore_errors=True)  # a broken venv: start again, once
                    _create_venv(venv)
                ok, why = _works(python)
                if not ok:
                    raise TVUnavailable(f"{python} still cannot import torchvision and deeplake_loader after "
                                        f"pip install: {why}")
            marker.write_text(f"{' '.join(packages())} verified {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
    _PYTHON_CACHE["python"] = python
    return python


_PRELUDE = """\
import json as _tv_json, os as _tv_os, sys as _tv_sys, warnings as _tv_warnings
_tv_warnings.filterwarnings("ignore")
def emit(obj):
    with open(_tv_os.environ["TV_RESULT"], "w") as _f:
        _tv_json.dump(obj, _f)
ARGS = _tv_sys.argv[1:]
"""


def run_tv(script, *args, timeout: float = 600, cwd=None):
    """Run ``script`` (source text or a path) with real torchvision; return what it emitted (JSON).

    Raises TVUnavailable if the venv cannot be had, TVScriptError (with stderr) if the script fails."""
    import json

    python = tv_python()
    with tempfile.TemporaryDirectory(prefix="tv_run_") as tmp:
        result = Path(tmp) / "result.json"
        if isinstance(script, Path):
            path = script
        else:
            path = Path(tmp) / "script.py"
            path.write_text(_PRELUDE + textwrap.dedent(script))
        env = _env()
        env["TV_RESULT"] = str(result)
        cmd = [python, str(path), *map(str, args)]
        try:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd or tmp)
        except subprocess.TimeoutExpired as e:
            raise TVScriptError(f"torchvision script timed out after {timeout}s: {path}", -1,
                                str(e.stdout or ""), str(e.stderr or "")) from None
        if r.returncode != 0:
            raise TVScriptError(f"torchvision script failed (exit {r.returncode}): {path.name} {list(args)}\n"
                                f"--- stderr ---\n{r.stderr[-6000:]}", r.returncode, r.stdout, r.stderr)
        if result.exists() and result.stat().st_size:
            return json.loads(result.read_text())
        return None
