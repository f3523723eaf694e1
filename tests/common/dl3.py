"""Harness around REAL deeplake 3.9.52, which lives in a side virtual environment (it needs numpy<2).

The main test process never imports deeplake: it runs scripts in the side venv and exchanges data
through files. Public API:

* ``dl3_python() -> str``: the interpreter of the side venv. ``DEEPLAKE_LOADER_DL3_PYTHON``
  overrides it; otherwise the venv at ``~/.cache/deeplake_loader/venv-dl3-3.9.52`` is found or
  created (``python3 -m venv`` + ``pip install deeplake==3.9.52 "numpy<2" torch==2.13.0
  libdeeplake==0.0.164``; torch for deeplake's own ``ds.pytorch()``, libdeeplake for its C++
  ``ds.dataloader()``, tests/common/enterprise.py), under an ``fcntl``
  file lock so that concurrent pytest processes build it once, with a marker file written after a
  successful, verified install. Raises ``DL3Unavailable`` with the reason if that is impossible.
* ``run_dl3(script, *args, timeout=...) -> object``: run a script (source text, or a path to a
  ``.py`` file) in the venv with ``BUGGER_OFF=true``. Text scripts get a prelude defining
  ``emit(obj)``; whatever they ``emit`` (JSON) is returned. Path scripts may write JSON to the file
  named by ``$DL3_RESULT``. A failing script raises ``DL3ScriptError`` carrying deeplake's stderr.
* ``vectors_dir() -> Path``: the test vectors of ``dl3_vectors.py``, generated once per content
  hash of that script into ``~/.cache/deeplake_loader/vectors-<hash>``.
* ``skip_or_fail(reason)``: fail in CI (``CI`` set), skip elsewhere.
* Comparison helpers (no deeplake import): ``load_expected(vector_dir)``, ``load_npz(path)``,
  ``jsonable(value)`` (the normal form dl3_vectors.py records json/list values in),
  ``array_mismatch(got, want) -> str | None`` (exact: dtype, shape, every value),
  ``dtype_equal(ours, recorded)``, ``compare_dataset(ours, view, arrays) -> [differences]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from .sidevenv import CACHE_DIR, ScriptError, SideVenv, file_lock, in_ci

DL3_VERSION = "3.9.52"
ENV_PYTHON = "DEEPLAKE_LOADER_DL3_PYTHON"
VENV_DIR = CACHE_DIR / f"venv-dl3-{DL3_VERSION}"
MARKER_NAME = ".deeplake_loader_ready-torch-media-libdeeplake"  # changes when DL3_PACKAGES does (an old venv is topped up)
# torch: deeplake's own ds.pytorch() needs it (compared with ours); 2.13.0 is the CPU wheel kept on disk.
# av, pydicom, nibabel, laspy: deeplake's readers of video/audio, dicom, nifti and las files (its
# extras), at versions that work with numpy<2 and with deeplake 3.9.52's calls into them.
# libdeeplake: deeplake's C++ ("enterprise") loader behind ds.dataloader(), pinned to the version
# deeplake 3.9.52 installs (tests/common/enterprise.py compares the chain with it)
DL3_PACKAGES = [f"deeplake=={DL3_VERSION}", "numpy<2", "torch==2.13.0", "av>=10,<19", "pydicom>=2.3,<4",
                "nibabel>=4,<6", "laspy>=2.2,<3", "libdeeplake==0.0.164"]
VECTORS_SCRIPT = Path(__file__).with_name("dl3_vectors.py")

_CHECK = (
    "import deeplake, numpy, torch, av, pydicom, nibabel, laspy, indra, sys; "
    f"sys.exit(0 if deeplake.__version__ == '{DL3_VERSION}' and numpy.__version__ < '2' else 3)"
)


class DL3Unavailable(RuntimeError):
    """The deeplake 3.9.52 venv is missing and could not be created (e.g. no network)."""


class DL3ScriptError(ScriptError):
    """A script run in the deeplake venv failed; the message carries its stderr."""


VENV = SideVenv(label=f"deeplake {DL3_VERSION}", venv=VENV_DIR, marker=MARKER_NAME, packages=lambda: DL3_PACKAGES,
                check=_CHECK, override_var=ENV_PYTHON, result_var="DL3_RESULT", unavailable=DL3Unavailable,
                script_error=DL3ScriptError, extra_env={"BUGGER_OFF": "true"})  # deeplake's telemetry off


def skip_or_fail(reason: str):
    """Tests that need deeplake fail in CI with the reason, and skip with it elsewhere."""
    if in_ci():
        pytest.fail(f"deeplake {DL3_VERSION} side venv unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"deeplake {DL3_VERSION} side venv unavailable: {reason}")


def dl3_python() -> str:
    """Path of the deeplake 3.9.52 interpreter (found, or created once under a file lock)."""
    return VENV.python()


def run_dl3(script, *args, timeout: float = 300, cwd=None):
    """Run ``script`` (source text or a path) with deeplake 3.9.52; return what it emitted (JSON).

    Raises DL3Unavailable if the venv cannot be had, DL3ScriptError (with stderr) if the script fails.
    """
    return VENV.run(script, *args, timeout=timeout, cwd=cwd)


def vectors_hash() -> str:
    h = hashlib.sha256(VECTORS_SCRIPT.read_bytes())
    h.update(DL3_VERSION.encode())
    h.update(b"generated in place")  # link vectors hold absolute paths: the folder never moves
    return h.hexdigest()[:16]


def vectors_dir(timeout: float = 600) -> Path:
    """Generate (once per content hash of dl3_vectors.py) and return the test-vector directory.
    Generated where it stays (link tensors store absolute paths of their files), under a lock;
    manifest.json, written last, marks it complete, and an incomplete folder is regenerated."""
    target = CACHE_DIR / f"vectors-{vectors_hash()}"
    done = target / "manifest.json"
    if done.exists():
        return target
    dl3_python()  # venv first (own lock), so that a missing venv is reported as such
    with file_lock(CACHE_DIR / "vectors.lock"):
        if done.exists():
            return target
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        try:
            t0 = time.perf_counter()
            run_dl3(VECTORS_SCRIPT, target, timeout=timeout)
            elapsed = time.perf_counter() - t0
            manifest = json.loads(done.read_text())
            manifest["generation_seconds"] = round(elapsed, 2)
            tmp = target / "manifest.json.tmp"
            tmp.write_text(json.dumps(manifest, indent=1))
            os.replace(tmp, done)
        except BaseException:
            if done.exists():
                done.unlink()
            raise
        for old in CACHE_DIR.glob("vectors-*"):  # vectors of older versions of the script
            if old.is_dir() and old != target:
                shutil.rmtree(old, ignore_errors=True)
    return target


def load_expected(vector_root: Path) -> dict:
    return json.loads((Path(vector_root) / "expected.json").read_text())


def list_vectors() -> list:
    """Vector names, read from dl3_vectors.py's source (no deeplake import): for parametrization."""
    import ast

    tree = ast.parse(VECTORS_SCRIPT.read_text())
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("v_"):
            if any(isinstance(d, ast.Name) and d.id == "vector" for d in node.decorator_list):
                names.append(node.name[2:])
    return names


# ------------------------------------------------------------------------------------------------
# comparison helpers (no deeplake import)



def jsonable(v):
    """The same JSON-able normal form that dl3_vectors.py records deeplake's values in."""
    if isinstance(v, np.ndarray):
        if v.dtype == object:
            return [jsonable(x) for x in v.tolist()]
        return {"__ndarray__": v.tolist(), "dtype": v.dtype.str, "shape": list(v.shape)}
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def array_mismatch(got, want) -> str | None:
    """None if `got` equals `want` exactly (dtype, shape, every value); else a description."""
    if not isinstance(got, np.ndarray):
        return f"got {type(got).__name__}, expected ndarray {want.dtype}{want.shape}"
    if got.dtype != want.dtype:
        return f"dtype {got.dtype} != expected {want.dtype} (shape {got.shape} vs {want.shape})"
    if got.shape != want.shape:
        return f"shape {got.shape} != expected {want.shape}"
    if want.dtype.kind == "f":
        eq = (got == want) | (np.isnan(got) & np.isnan(want))
    else:
        eq = got == want
    if eq.all():
        return None
    bad = np.argwhere(~eq)
    first = tuple(int(x) for x in bad[0])
    msg = f"{len(bad)} of {want.size} values differ; first at {first}: got {got[first]!r}, expected {want[first]!r}"
    if want.dtype.kind in "uif":
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        msg += f"; max |diff| {diff.max():g}"
    return msg


def dtype_equal(got, want_str) -> bool:
    """Our tensor.dtype against deeplake's recorded ``np.dtype(...).str`` (None stays None)."""
    if want_str is None:
        return got is None
    try:
        return np.dtype(got) == np.dtype(want_str)
    except TypeError:
        return False


def load_npz(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def compare_dataset(ours, view: dict, arrays: dict, where: str = "") -> list:
    """Every difference between our opened Dataset ``ours`` and a view recorded by deeplake
    (``dl3_vectors.dump_view``): tensor list, len, htype/dtype/shape/compressions/class names, and
    every sample (t[i].numpy() for arrays, t[i].data()["value"] for text-likes). [] if equal."""
    problems = []
    if list(ours.tensors) != view["tensors"]:
        problems.append(f"{where}tensor list {list(ours.tensors)} != {view['tensors']}")
    if len(ours) != view["len"]:
        problems.append(f"{where}len(ds) {len(ours)} != {view['len']}")
    for name, exp in view["meta"].items():
        w = f"{where}tensor '{name}': "
        try:
            t = ours[name]
        except Exception as e:  # noqa: BLE001 - reported as a difference
            problems.append(f"{w}cannot open: {type(e).__name__}: {e}")
            continue
        if t.htype != exp["htype"] and not (exp["htype"] is None and t.htype == "generic"):
            problems.append(f"{w}htype {t.htype!r} != {exp['htype']!r}")
        if not dtype_equal(t.dtype, exp["dtype"]):
            problems.append(f"{w}dtype {t.dtype!r} != {exp['dtype']!r}")
        if len(t) != exp["length"]:
            problems.append(f"{w}len {len(t)} != {exp['length']}")
            continue
        if tuple(t.shape) != tuple(exp["shape"]):
            problems.append(f"{w}shape {tuple(t.shape)} != {tuple(exp['shape'])}")
        if t.meta.sample_compression != exp["sample_compression"]:
            problems.append(f"{w}sample_compression {t.meta.sample_compression!r} != {exp['sample_compression']!r}")
        if t.meta.chunk_compression != exp["chunk_compression"]:
            problems.append(f"{w}chunk_compression {t.meta.chunk_compression!r} != {exp['chunk_compression']!r}")
        if "class_names" in exp and list(t.info.class_names) != exp["class_names"]:
            problems.append(f"{w}class_names {list(t.info.class_names)} != {exp['class_names']}")
        for i in range(exp["length"]):
            try:
                if exp["kind"] == "array":
                    msg = array_mismatch(t[i].numpy(), arrays[f"t{exp['index']}/{i}"])
                else:
                    got = jsonable(t[i].data()["value"])
                    msg = None if got == exp["values"][i] else f"{got!r} != {exp['values'][i]!r}"
            except Exception as e:  # noqa: BLE001 - reported as a difference
                msg = f"raised {type(e).__name__}: {e}"
            if msg:
                problems.append(f"{w}sample {i}: {msg}")
    return problems


def missing_api(*names) -> list:
    """The names among ``names`` that ``deeplake_loader`` does not export (yet). Test modules skip,
    with that list as the reason, until the reader/writer they exercise exist; an import error of
    the package itself is NOT hidden."""
    import deeplake_loader

    return [n for n in names if not hasattr(deeplake_loader, n)]
