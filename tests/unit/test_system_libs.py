"""setup.py finds libjpeg-turbo, libpng and libdeflate before compiling, and names what is missing.

A machine without a library is imitated without uninstalling anything: a C compiler whose header
search path is a mirror of the real one with that library's headers left out (``-nostdinc``), an
empty pkg-config directory, or a library name that does not exist.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deeplake_loader import _system_libs as S

ROOT = Path(__file__).resolve().parents[2]
JPEG, PNG, DEFLATE = S.LIBRARIES

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def hidden_headers_env(tmp_path, hide, pkg_config=True) -> dict:
    """os.environ with CC = gcc that sees the system headers except ``hide`` (names under /usr/include);
    without pkg_config, pkg-config knows no library at all."""
    out = subprocess.run(["gcc", "-xc", "-E", "-v", "-"], input="", capture_output=True, text=True).stderr
    dirs = out.split("#include <...> search starts here:")[1].split("End of search list.")[0].split()
    flags = []
    for d in dirs:
        if not d.startswith("/usr/include"):
            flags += ["-isystem", d]
            continue
        mirror = tmp_path / "include" / d.strip("/").replace("/", "_")
        mirror.mkdir(parents=True)
        for entry in os.listdir(d):
            if os.path.relpath(os.path.join(d, entry), "/usr/include") not in hide:
                (mirror / entry).symlink_to(os.path.join(d, entry))
        flags += ["-isystem", str(mirror)]
    env = dict(os.environ, CC=shlex.join(["gcc", "-nostdinc"] + flags))
    if not pkg_config:
        (tmp_path / "no-pc").mkdir()
        env["PKG_CONFIG_LIBDIR"] = str(tmp_path / "no-pc")
        env.pop("PKG_CONFIG_PATH", None)
    return env


def test_every_library_is_found_here():
    flags, missing = S.find()
    assert missing == []
    assert {"jpeg", "deflate"} <= set(flags.libraries) and any(n.startswith("png") for n in flags.libraries)


def test_without_pkg_config_the_probe_alone_finds_them(tmp_path):
    flags, missing = S.find(env=hidden_headers_env(tmp_path, hide=set(), pkg_config=False))
    assert missing == [] and flags.libraries == ["jpeg", "png", "deflate"]


def test_a_bogus_library_name_is_reported_with_its_packages():
    bogus = dataclasses.replace(DEFLATE, pkg_config="libdeflate-not-here", link="deflate_not_here")
    flags, missing = S.find((JPEG, PNG, bogus))
    assert [m.library.name for m in missing] == ["libdeflate"]
    assert "deflate_not_here" not in flags.libraries and "jpeg" in flags.libraries
    msg = S.missing_message(missing)
    assert "1 system library is missing" in msg
    assert "libdeflate  Debian/Ubuntu package libdeflate-dev, conda package libdeflate" in msg
    assert "pkg-config has no 'libdeflate-not-here'" in msg and "-ldeflate_not_here" in msg
    assert "sudo apt-get install libdeflate-dev" in msg and "conda install -c conda-forge libdeflate" in msg
    assert "libpng-dev" not in msg and "libjpeg62-turbo-dev" not in msg


def test_a_missing_function_is_a_missing_library():
    """A libjpeg that is not libjpeg-turbo links jpeg_std_error but not jpeg_crop_scanline."""
    old = dataclasses.replace(JPEG, symbols=("jpeg_std_error", "jpeg_no_such_function"))
    _, missing = S.find((old,))
    assert len(missing) == 1 and "jpeg_no_such_function" in missing[0].reason


def test_headers_missing_without_pkg_config_lists_every_library_in_one_message(tmp_path):
    env = hidden_headers_env(tmp_path, hide={"libdeflate.h", "png.h", "libpng16", "libpng"}, pkg_config=False)
    flags, missing = S.find(env=env)
    assert [m.library.name for m in missing] == ["libpng", "libdeflate"]
    assert flags.libraries == ["jpeg"]
    msg = S.missing_message(missing)
    assert "2 system libraries are missing" in msg
    assert "png.h: No such file" in msg and "libdeflate.h: No such file" in msg
    assert "sudo apt-get install libpng-dev libdeflate-dev" in msg
    assert "conda install -c conda-forge libpng libdeflate" in msg


def test_no_compiler():
    with pytest.raises(S.CompilerNotFound, match="no-such-cc"):
        S.find(env=dict(os.environ, CC="/nonexistent/no-such-cc"))


def test_setup_py_stops_before_compiling_with_the_message(tmp_path):
    """The real build command on a machine whose libdeflate-dev headers are absent (pkg-config still
    has its .pc file): one message, exit status 1, nothing compiled or linked."""
    env = hidden_headers_env(tmp_path, hide={"libdeflate.h"})
    env.pop("PYTHONPATH", None)
    out = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-temp", str(tmp_path / "temp"),
                          "--build-lib", str(tmp_path / "lib")], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "error: deeplake_loader's compiled kernels cannot be built: 1 system library is missing" in out.stderr
    assert "pkg-config found 'libdeflate' but a program using it does not build" in out.stderr
    assert "libdeflate.h: No such file" in out.stderr and "sudo apt-get install libdeflate-dev" in out.stderr
    assert not (tmp_path / "temp").exists() and not (tmp_path / "lib").exists()


def test_import_hint_names_every_library_and_the_one_that_failed():
    hint = S.install_hint("libdeflate.so.0: cannot open shared object file: No such file or directory")
    assert hint.startswith("The system library libdeflate cannot be loaded: install libdeflate-dev")
    for lib in S.LIBRARIES:
        assert lib.debian in hint and f"conda {lib.conda}" in hint
    assert not S.install_hint("undefined symbol: foo").startswith("The system library")


def test_package_import_explains_a_kernel_that_cannot_load():
    """What `import deeplake_loader` says when the dynamic loader cannot find libdeflate."""
    code = """if True:
        import importlib.abc, sys
        class NoDeflate(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "deeplake_loader._kernels.decode":
                    raise ImportError("libdeflate.so.0: cannot open shared object file: No such file or directory")
        sys.meta_path.insert(0, NoDeflate())
        import deeplake_loader
    """
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    err = out.stderr.strip().splitlines()[-1]
    assert err.startswith("ImportError: deeplake_loader's compiled kernel 'decode' cannot be imported (libdeflate.so.0")
    assert "The system library libdeflate cannot be loaded: install libdeflate-dev (Debian/Ubuntu) or libdeflate (conda)" in err
    assert "libjpeg62-turbo-dev" in err and "libpng-dev" in err
