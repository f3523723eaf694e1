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

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

DL3_VERSION = "3.9.52"
ENV_PYTHON = "DEEPLAKE_LOADER_DL3_PYTHON"
CACHE_DIR = Path(os.environ.get("DEEPLAKE_LOADER_CACHE", Path.home() / ".cache" / "deeplake_loader"))
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


class DL3ScriptError(RuntimeError):
    """A script run in the deeplake venv failed; the message carries its stderr."""

    def __init__(self, message: str, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        super().__init__(message)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str):
    """Tests that need deeplake fail in CI with the reason, and skip with it elsewhere."""
    if in_ci():
        pytest.fail(f"deeplake {DL3_VERSION} side venv unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"deeplake {DL3_VERSION} side venv unavailable: {reason}")


def _env() -> dict:
    env = dict(os.environ)
    env["BUGGER_OFF"] = "true"
    # the main process' own venv / path settings must not leak into the side interpreter
    for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(k, None)
    return env


def _works(python: str) -> bool:
    try:
        r = subprocess.run([python, "-c", _CHECK], env=_env(), capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _create_venv(venv: Path) -> None:
    """python3 -m venv + pip install; raises DL3Unavailable with pip's output on failure."""
    steps = []
    if not _venv_python(venv).exists():
        steps.append([sys.executable, "-m", "venv", str(venv)])
    steps.append([str(_venv_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                  *DL3_PACKAGES])
    for cmd in steps:
        try:
            r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise DL3Unavailable(f"{' '.join(cmd)} failed: {e}") from e
        if r.returncode != 0:
            tail = (r.stderr or r.stdout)[-3000:]
            raise DL3Unavailable(f"{' '.join(cmd)} exited with {r.returncode}:\n{tail}")


_PYTHON_CACHE: dict = {}


def dl3_python() -> str:
    """Path of the deeplake 3.9.52 interpreter (found, or created once under a file lock)."""
    if "python" in _PYTHON_CACHE:
        return _PYTHON_CACHE["python"]
    override = os.environ.get(ENV_PYTHON)
    if override:
        if not _works(override):
            raise DL3Unavailable(f"${ENV_PYTHON}={override} cannot import deeplake {DL3_VERSION} with numpy<2")
        _PYTHON_CACHE["python"] = override
        return override
    venv = VENV_DIR
    marker = venv / MARKER_NAME
    python = str(_venv_python(venv))
    with _file_lock(CACHE_DIR / f"venv-dl3-{DL3_VERSION}.lock"):
        if not (marker.exists() and _venv_python(venv).exists()):
            if not _works(python):
                try:
                    _create_venv(venv)
                except DL3Unavailable:
                    if not venv.exists():
                        raise
                    shutil.rmtree(venv, ignore_errors=True)  # a broken venv: start again, once
                    _create_venv(venv)
                if not _works(python):
                    raise DL3Unavailable(f"{python} still cannot import deeplake {DL3_VERSION} after pip install")
            marker.write_text(f"deeplake=={DL3_VERSION} verified {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
    _PYTHON_CACHE["python"] = python
    return python


_PRELUDE = """\
import json as _dl3_json, os as _dl3_os, sys as _dl3_sys, warnings as _dl3_warnings
_dl3_warnings.filterwarnings("ignore")
def emit(obj):
    with open(_dl3_os.environ["DL3_RESULT"], "w") as _f:
        _dl3_json.dump(obj, _f)
ARGS = _dl3_sys.argv[1:]
"""


def run_dl3(script, *args, timeout: float = 300, cwd=None):
    """Run ``script`` (source text or a path) with deeplake 3.9.52; return what it emitted (JSON).

    Raises DL3Unavailable if the venv cannot be had, DL3ScriptError (with stderr) if the script fails.
    """
    python = dl3_python()
    with tempfile.TemporaryDirectory(prefix="dl3_run_") as tmp:
        result = Path(tmp) / "result.json"
        if isinstance(script, Path) or (isinstance(script, str) and "\n" not in script and script.endswith(".py")):
            path = Path(script)
        else:
            path = Path(tmp) / "script.py"
            path.write_text(_PRELUDE + textwrap.dedent(script))
        env = _env()
        env["DL3_RESULT"] = str(result)
        cmd = [python, str(path), *map(str, args)]
        try:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd or tmp)
        except subprocess.TimeoutExpired as e:
            raise DL3ScriptError(f"deeplake script timed out after {timeout}s: {path}", -1,
                                 str(e.stdout or ""), str(e.stderr or "")) from None
        if r.returncode != 0:
            raise DL3ScriptError(
                f"deeplake {DL3_VERSION} script failed (exit {r.returncode}): {path.name} {list(args)}\n"
                f"--- stderr ---\n{r.stderr[-6000:]}",
                r.returncode, r.stdout, r.stderr,
            )
        if result.exists() and result.stat().st_size:
            return json.loads(result.read_text())
        return None


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
    with _file_lock(CACHE_DIR / "vectors.lock"):
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
    dl3_python()  # venv first (own lock), so that a missing venv is reported as such
    with _file_lock(CACHE_DIR / "vectors.lock"):
        if done.exists():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp", dir=CACHE_DIR))
        try:
            t0 = time.perf_counter()
            run_dl3(VECTORS_SCRIPT, tmp, timeout=timeout)
            elapsed = time.perf_counter() - t0
            manifest = json.loads((tmp / "manifest.json").read_text())
            manifest["generation_seconds"] = round(elapsed, 2)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        for old in CACHE_DIR.glob("vectors-*"):  # vectors of older versions of the script
            if old.is_dir() and old != target and ".tmp" not in old.name:
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
