"""Side virtual environments: interpreters the tests run scripts in, holding what the main venv
cannot (deeplake 3.9.52 needs numpy<2; real torchvision needs torch 2.14.1). ``dl3.py`` and
``tvenv.py`` each describe one (its packages, the import check that proves it works, the names of
its errors); this module finds, builds and runs them the same way for both:

* ``SideVenv.python()``: the interpreter; an override variable names one, otherwise the venv under
  ``~/.cache/deeplake_loader`` is used, or built once under an ``fcntl`` file lock (so concurrent
  pytest processes build it once) with a marker file written after a verified install; a broken
  venv is removed and built again, once. Raises the venv's ``Unavailable`` error with the reason.
* ``SideVenv.ready()``: the interpreter and its environment if the venv is already built, else
  ``(None, None)`` (benches use it: they never build one).
* ``SideVenv.run(script, *args)``: run a script (source text, given ``emit(obj)`` by a prelude, or a
  path to a ``.py`` file, which may write JSON to the file named by the venv's result variable) and
  return what it emitted; a failing script raises the venv's ``ScriptError`` with its stderr.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

CACHE_DIR = Path(os.environ.get("DEEPLAKE_LOADER_CACHE", Path.home() / ".cache" / "deeplake_loader"))
REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class ScriptError(RuntimeError):
    """A script run in a side venv failed; the message carries its stderr."""

    def __init__(self, message: str, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        super().__init__(message)


_PRELUDE = """\
import json as _sv_json, os as _sv_os, sys as _sv_sys, warnings as _sv_warnings
_sv_warnings.filterwarnings("ignore")
def emit(obj):
    with open(_sv_os.environ[{result_var!r}], "w") as _f:
        _sv_json.dump(obj, _f)
ARGS = _sv_sys.argv[1:]
"""


class SideVenv:
    """One side venv. ``packages`` is a callable (the pins may come from the main venv);
    ``check`` is Python code that exits 0 where the venv works; ``extra_env`` is added to the
    scripts' environment; with ``with_repo`` the scripts import this checkout (PYTHONPATH)."""

    def __init__(self, *, label: str, venv: Path, marker: str, packages, check: str, override_var: str,
                 result_var: str, unavailable: type, script_error: type, with_repo: bool = False,
                 extra_env: dict | None = None, install_timeout: float = 900, check_timeout: float = 120):
        self.label, self.venv, self.marker = label, Path(venv), marker
        self.packages, self.check, self.override_var, self.result_var = packages, check, override_var, result_var
        self.Unavailable, self.ScriptError = unavailable, script_error
        self.with_repo, self.extra_env = with_repo, dict(extra_env or {})
        self.install_timeout, self.check_timeout = install_timeout, check_timeout
        self._python = None

    @property
    def bin(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self, with_repo: bool | None = None) -> dict:
        """The scripts' environment: the main process' venv and path settings never leak in."""
        env = dict(os.environ)
        for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
            env.pop(k, None)
        env.update(self.extra_env)
        if self.with_repo if with_repo is None else with_repo:
            env["PYTHONPATH"] = str(REPO_ROOT)
        return env

    def works(self, python: str) -> tuple:
        """(ok, why): whether ``python`` passes the venv's import check."""
        try:
            r = subprocess.run([python, "-c", self.check], env=self.env(), capture_output=True, text=True,
                               timeout=self.check_timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, str(e)
        return r.returncode == 0, (r.stderr or r.stdout)[-2000:]

    def _create(self) -> None:
        steps = []
        if not self.bin.exists():
            steps.append([sys.executable, "-m", "venv", str(self.venv)])
        steps.append([str(self.bin), "-m", "pip", "install", "-q", "--disable-pip-version-check", *self.packages()])
        for cmd in steps:
            try:
                r = subprocess.run(cmd, env=self.env(with_repo=False), capture_output=True, text=True,
                                   timeout=self.install_timeout)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise self.Unavailable(f"{' '.join(cmd)} failed: {e}") from e
            if r.returncode != 0:
                raise self.Unavailable(f"{' '.join(cmd)} exited with {r.returncode}:\n{(r.stderr or r.stdout)[-3000:]}")

    def python(self) -> str:
        """The side interpreter: the override's, or the venv's (built once under a file lock)."""
        if self._python:
            return self._python
        override = os.environ.get(self.override_var)
        if override:
            ok, why = self.works(override)
            if not ok:
                raise self.Unavailable(f"${self.override_var}={override} is not a working {self.label} venv: {why}")
            self._python = override
            return override
        python, marker = str(self.bin), self.venv / self.marker
        with file_lock(CACHE_DIR / f"{self.venv.name}.lock"):
            if not (marker.exists() and self.bin.exists()):
                if not self.works(python)[0]:
                    try:
                        self._create()
                    except self.Unavailable:
                        if not self.venv.exists():
                            raise
                        shutil.rmtree(self.venv, ignore_errors=True)  # a broken venv: start again, once
                        self._create()
                    ok, why = self.works(python)
                    if not ok:
                        raise self.Unavailable(f"{python} still is not a working {self.label} venv after pip "
                                               f"install: {why}")
                marker.write_text(f"{' '.join(self.packages())} verified {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        self._python = python
        return python

    def ready(self):
        """(interpreter, env) when the venv is there already (or overridden), else (None, None)."""
        override = os.environ.get(self.override_var)
        python = override or str(self.bin)
        if not os.path.exists(python) or not (override or (self.venv / self.marker).exists()):
            return None, None
        return python, self.env()

    def run(self, script, *args, timeout: float = 300, cwd=None):
        """Run ``script`` (source text or a ``.py`` path) in the venv; return what it emitted (JSON)."""
        python = self.python()
        with tempfile.TemporaryDirectory(prefix="sidevenv_run_") as tmp:
            result = Path(tmp) / "result.json"
            if isinstance(script, Path) or (isinstance(script, str) and "\n" not in script and script.endswith(".py")):
                path = Path(script)
            else:
                path = Path(tmp) / "script.py"
                path.write_text(_PRELUDE.format(result_var=self.result_var) + textwrap.dedent(script))
            env = self.env()
            env[self.result_var] = str(result)
            cmd = [python, str(path), *map(str, args)]
            try:
                r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd or tmp)
            except subprocess.TimeoutExpired as e:
                raise self.ScriptError(f"{self.label} script timed out after {timeout}s: {path}", -1,
                                       str(e.stdout or ""), str(e.stderr or "")) from None
            if r.returncode != 0:
                raise self.ScriptError(f"{self.label} script failed (exit {r.returncode}): {path.name} {list(args)}\n"
                                       f"--- stderr ---\n{r.stderr[-6000:]}", r.returncode, r.stdout, r.stderr)
            if result.exists() and result.stat().st_size:
                return json.loads(result.read_text())
            return None
