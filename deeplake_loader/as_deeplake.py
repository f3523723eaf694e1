"""``python -m deeplake_loader.as_deeplake SCRIPT [ARGS...]``: run a Deep Lake 3 script unchanged,
its ``import deeplake`` (and ``deeplake.<submodule>`` imports) answered by deeplake_loader.

The script runs in a new interpreter (``os.execv``: the same process id, argv as if it had been run
directly) with deeplake_loader's ``_shim`` folder first on PYTHONPATH, so the processes it starts
(spawned DataLoader workers re-importing it, subprocesses) see the same ``deeplake``. Refuses,
naming it, where a real deeplake is installed (``DEEPLAKE_LOADER_AS_DEEPLAKE=force`` overrides).
``--path`` prints the folder to put on PYTHONPATH by hand. See deeplake_loader/alias.py.
"""

from __future__ import annotations

import os
import sys

from deeplake_loader.alias import ENV, SHIM_DIR, real_deeplake

USAGE = "usage: python -m deeplake_loader.as_deeplake SCRIPT [ARGS...]  |  --path"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE + "\n\n" + (__doc__ or ""))
        return 0 if argv else 2
    if argv[0] == "--path":
        print(SHIM_DIR)
        return 0
    force = os.environ.get(ENV, "").strip().lower() == "force"
    other = real_deeplake()
    if other is not None and not force:
        print(f"deeplake_loader.as_deeplake: a real deeplake is installed ({other}); refusing to shadow it "
              f"(set {ENV}=force to do so anyway)", file=sys.stderr)
        return 2
    if not os.path.exists(argv[0]):
        print(f"deeplake_loader.as_deeplake: no such script: {argv[0]}\n{USAGE}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SHIM_DIR] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env[ENV] = "force" if force else "1"
    os.execve(sys.executable, [sys.executable, *argv], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
