"""``import deeplake`` answered by deeplake_loader, for scripts written against Deep Lake 3.

``import deeplake_loader as deeplake`` covers ``deeplake.load(...)`` and everything reached from the
package, but not a script's submodule imports (``from deeplake.util.exceptions import ...``,
``from deeplake.enterprise.dataloader import dataloader``). Two opt-in switches make ``deeplake``
and every ``deeplake.<sub>`` resolve to deeplake_loader and ``deeplake_loader.<sub>`` (the same
module objects, so classes and ``isinstance`` agree under both names):

* in code, one line before the script's imports: ``import deeplake_loader;
  deeplake_loader.install_as_deeplake()`` (a finder at the front of ``sys.meta_path``);
* for a script left unchanged: ``python -m deeplake_loader.as_deeplake train.py args...``, which
  runs it with ``deeplake_loader/_shim`` (a ``deeplake`` package that installs the alias) on
  ``PYTHONPATH``, so processes the script starts (spawned DataLoader workers that re-import it,
  subprocesses) resolve ``deeplake`` the same way. ``python -m deeplake_loader.as_deeplake --path``
  prints that folder for a ``PYTHONPATH=...`` of one's own.

Neither ever shadows a real deeplake silently: where a ``deeplake`` other than ours is importable
(or already imported), they raise ``ImportError`` naming where it is; ``install_as_deeplake(force=True)``
/ ``DEEPLAKE_LOADER_AS_DEEPLAKE=force`` shadow it on purpose (with a warning). Which ``deeplake.*``
submodules exist is listed in README ("deeplake submodules").
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings

ENV = "DEEPLAKE_LOADER_AS_DEEPLAKE"  # "1": the shim installs the alias; "force": even over a real deeplake
SHIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_shim")
_ALIAS, _REAL = "deeplake", "deeplake_loader"


class _AliasLoader(importlib.abc.Loader):
    """Hands out the already imported deeplake_loader module for its deeplake name."""

    def __init__(self, module):
        self.module, self.spec = module, module.__spec__

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        module.__spec__ = self.spec  # module_from_spec set the alias's spec on our module: keep its own


class _AliasFinder(importlib.abc.MetaPathFinder):
    """``deeplake`` → ``deeplake_loader``, ``deeplake.a.b`` → ``deeplake_loader.a.b``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _ALIAS and not fullname.startswith(_ALIAS + "."):
            return None
        real = _REAL + fullname[len(_ALIAS):]
        try:
            module = importlib.import_module(real)
        except ModuleNotFoundError as e:
            if e.name == real:  # not a submodule we provide: the normal "No module named 'deeplake.x'"
                return None
            raise
        return importlib.util.spec_from_loader(fullname, _AliasLoader(module), is_package=hasattr(module, "__path__"))


def real_deeplake() -> str | None:
    """Where a deeplake other than ours would be imported from (None: there is none)."""
    loaded = sys.modules.get(_ALIAS)
    if loaded is not None and getattr(loaded, "__name__", None) != _REAL:
        return getattr(loaded, "__file__", None) or repr(loaded)
    shim = os.path.normcase(os.path.abspath(SHIM_DIR))
    paths = [p for p in sys.path if os.path.normcase(os.path.abspath(p or os.curdir)) != shim]
    spec = importlib.machinery.PathFinder.find_spec(_ALIAS, paths)
    if spec is None:
        return None
    return spec.origin or ", ".join(spec.submodule_search_locations or [])


def installed() -> bool:
    return any(isinstance(f, _AliasFinder) for f in sys.meta_path)


def install_as_deeplake(force: bool = False) -> None:
    """Make ``import deeplake`` and ``deeplake.<submodule>`` imports resolve to deeplake_loader in
    this process. Raises ImportError if a real deeplake is installed or imported, unless
    ``force=True`` (a real one already imported cannot be replaced, even then). Idempotent."""
    loaded = sys.modules.get(_ALIAS)
    if loaded is not None and getattr(loaded, "__name__", None) != _REAL:
        raise ImportError(f"the real deeplake is already imported ({real_deeplake()}): deeplake_loader cannot "
                          "take its name in this process; install the alias before anything imports deeplake")
    if installed():
        return
    other = real_deeplake()
    if other is not None:
        if not force:
            raise ImportError(f"a real deeplake is installed ({other}): deeplake_loader will not shadow it. Use "
                              "`import deeplake_loader as deeplake`, uninstall deeplake, or pass force=True")
        warnings.warn(f"deeplake_loader now answers `import deeplake`; the real deeplake at {other} is shadowed",
                      stacklevel=2)
    sys.meta_path.insert(0, _AliasFinder())
    for name in [n for n in sys.modules if n == _ALIAS or n.startswith(_ALIAS + ".")]:
        if getattr(sys.modules[name], "__name__", "").split(".")[0] != _REAL:
            del sys.modules[name]  # e.g. a failed import's leftovers


def uninstall_as_deeplake() -> None:
    """Undo ``install_as_deeplake()`` (``deeplake`` names imported so far are forgotten)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AliasFinder)]
    for name in [n for n in sys.modules if n == _ALIAS or n.startswith(_ALIAS + ".")]:
        if getattr(sys.modules[name], "__name__", "").split(".")[0] == _REAL:
            del sys.modules[name]
