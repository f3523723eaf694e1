"""deeplake's module and exception names, and the switches that make ``import deeplake`` ours
(deeplake_loader/alias.py). Scripts run in fresh interpreters, as a user runs them.

* every name of ``deeplake.util.exceptions`` (read from REAL deeplake 3.9.52) exists in ours with
  deeplake's builtin bases; the ones we raise catch our errors;
* ``install_as_deeplake()`` and ``python -m deeplake_loader.as_deeplake script.py`` make
  ``import deeplake`` and the submodule imports of scripts work, with the same module objects;
  workers spawned by the loader resolve ``deeplake`` too;
* neither shadows a real deeplake silently.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.common import dl3

ROOT = Path(__file__).resolve().parents[2]

# what our README promises (section "deeplake submodules")
SUBMODULES = ["deeplake.util", "deeplake.util.exceptions", "deeplake.util.iterable_ordered_dict", "deeplake.enterprise",
              "deeplake.enterprise.dataloader", "deeplake.integrations", "deeplake.integrations.pytorch",
              "deeplake.integrations.pytorch.common", "deeplake.core", "deeplake.core.dataset",
              "deeplake.core.dataset.dataset", "deeplake.core.tensor", "deeplake.constants"]


def _run(code: str, tmp_path: Path, *args, env_extra=None, module_runner=False, timeout=180):
    """Run ``code`` as a script file in a fresh interpreter (ours), from tmp_path."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DEEPLAKE_LOADER_AS_DEEPLAKE")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(env_extra or {})
    cmd = [sys.executable] + (["-m", "deeplake_loader.as_deeplake"] if module_runner else []) + [str(script), *args]
    return subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def test_every_deeplake_exception_name_exists_with_deeplakes_bases(dl3_python):
    script = r'''
import inspect, deeplake.util.exceptions as m
out = {}
for n, c in vars(m).items():
    if inspect.isclass(c) and issubclass(c, BaseException) and c.__module__ == m.__name__:
        out[n] = [b.__name__ for b in c.__mro__ if b.__module__ == "builtins"]
emit(out)
'''
    try:
        theirs = dl3.run_dl3(script)
    except dl3.DL3Unavailable as e:
        dl3.skip_or_fail(str(e))
    import deeplake_loader.util.exceptions as ours

    assert len(theirs) > 100
    for name, builtins_mro in theirs.items():
        cls = getattr(ours, name, None)
        assert cls is not None, f"deeplake.util.exceptions.{name} is missing"
        mine = [b.__name__ for b in cls.__mro__ if b.__module__ == "builtins"]
        assert [b for b in builtins_mro if b not in mine] == [], f"{name}: deeplake's {builtins_mro}, ours {mine}"


def test_the_errors_we_raise_are_caught_by_deeplakes_names(tmp_path):
    import numpy as np

    import deeplake_loader as dl
    from deeplake_loader.util import exceptions as E

    with pytest.raises(E.DatasetHandlerError):
        dl.load(str(tmp_path / "none"))
    ds = dl.empty(str(tmp_path / "ds"))
    with pytest.raises(E.DatasetHandlerError, match="already exists"):
        dl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x")
    ds.x.extend([np.zeros(2), np.zeros(3)])
    with pytest.raises(E.TensorDoesNotExistError) as e:
        ds["nope"]
    assert isinstance(e.value, KeyError) and isinstance(e.value, AttributeError)
    with pytest.raises(E.TensorAlreadyExistsError):
        ds.create_tensor("x")
    with pytest.raises(E.DynamicTensorNumpyError):
        ds.x.numpy()
    with pytest.raises(E.ReadOnlyModeError):
        dl.load(str(tmp_path / "ds"), read_only=True).x.append(np.zeros(2))
    with pytest.raises(E.CheckoutError):
        ds.checkout("nope")
    with pytest.raises(E.SampleAppendError):
        ds.x.append("not a number")
    with pytest.raises(RuntimeError):  # deeplake's query errors are RuntimeErrors
        ds.query("select * where x = = 1")


def test_install_as_deeplake_gives_deeplakes_submodule_imports(tmp_path):
    r = _run(f"""
        import importlib, sys
        import deeplake_loader
        deeplake_loader.install_as_deeplake()
        import deeplake
        from deeplake.util.exceptions import TensorDoesNotExistError, DatasetHandlerError, EmptyTensorError
        from deeplake.enterprise.dataloader import dataloader, DeepLakeDataLoader
        from deeplake.integrations.pytorch.common import collate_fn
        from deeplake.util.iterable_ordered_dict import IterableOrderedDict
        from deeplake.core.dataset import Dataset
        from deeplake.constants import MB
        assert deeplake is deeplake_loader and deeplake.__spec__.name == "deeplake_loader"
        for name in {SUBMODULES!r}:
            alias, real = importlib.import_module(name), importlib.import_module("deeplake_loader" + name[8:])
            assert alias is real, name
        assert TensorDoesNotExistError is deeplake_loader.errors.TensorDoesNotExistError
        assert issubclass(deeplake_loader.errors.DatasetNotFoundError, DatasetHandlerError)
        try:
            deeplake.load("nothing_here")
        except deeplake.util.exceptions.DatasetHandlerError as e:
            print("caught", type(e).__name__)
        try:
            import deeplake.api.dataset
        except ModuleNotFoundError as e:
            print("missing", e.name)
        import numpy as np
        ds = deeplake.empty("ds")
        ds.create_tensor("x")
        ds.x.extend([np.array([i]) for i in range(4)])
        loader = dataloader(ds).batch(2).pytorch()
        assert isinstance(loader, DeepLakeDataLoader) and isinstance(ds, Dataset) and MB == 10**6
        print([b["x"].reshape(-1).tolist() for b in loader])
    """, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split("\n")[:3] == ["caught DatasetNotFoundError", "missing deeplake.api", "[[0, 1], [2, 3]]"]


UNCHANGED = """
    import sys
    import deeplake
    from deeplake.util.exceptions import DatasetHandlerError
    from deeplake.enterprise.dataloader import dataloader
    import numpy as np


    def double(sample):
        return {"x": sample["x"] * 2}


    def main():
        try:
            deeplake.load("nothing_here")
        except DatasetHandlerError:
            print("caught")
        ds = deeplake.empty("ds", overwrite=True)
        ds.create_tensor("x")
        ds.extend({"x": [np.array([i]) for i in range(6)]})
        # num_workers=1: a spawned worker process that re-imports this script, `import deeplake` included
        loader = dataloader(ds).transform(double).batch(3).pytorch(num_workers=1)
        print(sys.argv[1:], deeplake.__name__, [b["x"].reshape(-1).tolist() for b in loader])


    if __name__ == "__main__":
        main()
"""


def test_an_unchanged_script_runs_with_the_runner(tmp_path):
    r = _run(UNCHANGED, tmp_path, "--epochs", "3", module_runner=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split("\n")[:2] == ["caught", "['--epochs', '3'] deeplake_loader [[0, 2, 4], [6, 8, 10]]"]
    plain = _run(UNCHANGED, tmp_path)  # without the switch: no deeplake here
    assert plain.returncode != 0 and "No module named 'deeplake'" in plain.stderr


def test_a_real_deeplake_is_never_shadowed_silently(tmp_path):
    fake = tmp_path / "site" / "deeplake"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("WHO = 'the real one'\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT)])}
    r = _run("""
        import deeplake_loader
        try:
            deeplake_loader.install_as_deeplake()
        except ImportError as e:
            print("refused:", "real deeplake is installed" in str(e))
        import deeplake
        print(deeplake.WHO)
    """, tmp_path, env_extra=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split("\n")[:2] == ["refused: True", "the real one"]

    r = _run("import deeplake; print(deeplake.__name__)", tmp_path, module_runner=True, env_extra=env)
    assert r.returncode == 2 and "a real deeplake is installed" in r.stderr and "refusing" in r.stderr
    r = _run("import deeplake; print(deeplake.__name__)", tmp_path, module_runner=True,
             env_extra={**env, "DEEPLAKE_LOADER_AS_DEEPLAKE": "force"})
    assert r.returncode == 0 and r.stdout.strip() == "deeplake_loader", r.stderr[-3000:]

    r = _run("""
        import warnings
        import deeplake
        print(deeplake.WHO)
        import deeplake_loader
        try:
            deeplake_loader.install_as_deeplake(force=True)
        except ImportError as e:
            print("refused:", "already imported" in str(e))
    """, tmp_path, env_extra=env)
    assert r.returncode == 0 and r.stdout.split("\n")[:2] == ["the real one", "refused: True"], r.stderr[-3000:]


def test_shim_path_for_a_pythonpath_of_ones_own(tmp_path):
    r = subprocess.run([sys.executable, "-m", "deeplake_loader.as_deeplake", "--path"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    shim = r.stdout.strip()
    assert r.returncode == 0 and (Path(shim) / "deeplake" / "__init__.py").exists()
    r = _run("import deeplake.util.exceptions as e; print(e.__name__)", tmp_path,
             env_extra={"PYTHONPATH": os.pathsep.join([shim, str(ROOT)])})
    assert r.returncode == 0 and r.stdout.strip() == "deeplake_loader.util.exceptions", r.stderr[-3000:]
