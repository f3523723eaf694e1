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

Public API (like ``tests/common/dl3.py``; both are ``sidevenv.SideVenv``s):

* ``tv_python() -> str``: the side interpreter (``DEEPLAKE_LOADER_TV_PYTHON`` overrides), found or
  built once under an ``fcntl`` lock in ``~/.cache/deeplake_loader/venv-tv-<versions>``, with a
  marker written after a verified install. Raises ``TVUnavailable`` with the reason otherwise.
* ``run_tv(script, *args, timeout=...) -> object``: run a script (text, with ``emit(obj)`` for a
  JSON result, or a ``.py`` path writing JSON to ``$TV_RESULT``) in the side venv.
* ``skip_or_fail(reason)``: fail in CI, skip elsewhere.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

from .sidevenv import CACHE_DIR, REPO_ROOT, ScriptError, SideVenv, in_ci  # noqa: F401 (REPO_ROOT: for tests)

TORCH_VERSION = "2.14.1"
TORCHVISION_VERSION = "0.29.1"
ENV_PYTHON = "DEEPLAKE_LOADER_TV_PYTHON"
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


class TVScriptError(ScriptError):
    """A script run in the torchvision venv failed; the message carries its stderr."""


def _check_code() -> str:
    pins = _pins()
    return ("import sys, numpy, PIL, torch, torchvision, deeplake_loader; "
            "from deeplake_loader._kernels import decode; "
            f"sys.exit(0 if torch.__version__.split('+')[0] == '{TORCH_VERSION}' "
            f"and torchvision.__version__.split('+')[0] == '{TORCHVISION_VERSION}' "
            f"and numpy.__version__ == '{pins['numpy']}' and PIL.__version__ == '{pins['Pillow']}' else 3)")


VENV = SideVenv(label=f"torchvision {TORCHVISION_VERSION}", venv=venv_dir(), marker=MARKER_NAME, packages=packages,
                check=_check_code(), override_var=ENV_PYTHON, result_var="TV_RESULT", unavailable=TVUnavailable,
                script_error=TVScriptError, with_repo=True, extra_env={"OMP_NUM_THREADS": "2"},
                install_timeout=1800, check_timeout=300)


def skip_or_fail(reason: str):
    """Tests that need real torchvision fail in CI with the reason, and skip with it elsewhere."""
    if in_ci():
        pytest.fail(f"torchvision {TORCHVISION_VERSION} side venv unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"torchvision {TORCHVISION_VERSION} side venv unavailable: {reason}")


def tv_python() -> str:
    """Path of the torchvision side interpreter (found, or built once under a file lock)."""
    return VENV.python()


def run_tv(script, *args, timeout: float = 600, cwd=None):
    """Run ``script`` (source text or a path) with real torchvision; return what it emitted (JSON).

    Raises TVUnavailable if the venv cannot be had, TVScriptError (with stderr) if the script fails."""
    return VENV.run(script, *args, timeout=timeout, cwd=cwd)
