"""A ``deeplake`` package that is deeplake_loader (deeplake_loader/alias.py): on PYTHONPATH through
``python -m deeplake_loader.as_deeplake``, it installs the alias and hands back deeplake_loader
itself. It refuses (ImportError) where a real deeplake is also importable, unless
DEEPLAKE_LOADER_AS_DEEPLAKE=force."""

import os as _os
import sys as _sys

import deeplake_loader as _dl
from deeplake_loader import alias as _alias

del _sys.modules[__name__]  # this placeholder steps aside; the alias answers the name from now on
_alias.install_as_deeplake(force=_os.environ.get(_alias.ENV, "").strip().lower() == "force")
_sys.modules[__name__] = _dl  # what `import deeplake` returns
