"""The system C libraries the kernels link, how to find them, and what to install when one is missing.

setup.py's ``build_ext`` calls ``find()`` before compiling anything: each library is looked up with
pkg-config first, then confirmed (or, without pkg-config, found) by compiling and linking a tiny C
program that includes its header and references the functions the kernels need, with the same
compiler and flags the build uses (``CC``, ``CPPFLAGS``, ``CFLAGS``, ``LDFLAGS``). Everything missing
is reported in one message (``missing_message``) naming the Debian and conda packages that provide
it, instead of a linker error halfway through the build. ``_build_check.py`` uses
``install_hint`` when a built kernel does not import.

This file is loaded by setup.py by path, before the package is built, so it imports nothing from the
package and only the standard library.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SystemLibrary:
    name: str                 # what users call it
    pkg_config: str           # its pkg-config module
    headers: tuple            # included in this order by the probe (the last one is the library's)
    symbols: tuple            # functions the kernels call that older or other builds lack
    link: str                 # -l name when pkg-config does not know the library
    debian: str               # Debian/Ubuntu development package
    conda: str                # conda-forge package
    soname: str               # prefix of its shared object (libdeflate.so.0 -> "libdeflate")


LIBRARIES = (
    # jpeg_crop_scanline / jpeg_skip_scanlines exist in libjpeg-turbo >= 1.5 only (not in IJG libjpeg).
    SystemLibrary("libjpeg-turbo", "libjpeg", ("stdio.h", "jpeglib.h"),
                  ("jpeg_std_error", "jpeg_crop_scanline", "jpeg_skip_scanlines"), "jpeg",
                  "libjpeg62-turbo-dev", "libjpeg-turbo", "libjpeg"),
    SystemLibrary("libpng", "libpng", ("png.h",), ("png_create_read_struct", "png_set_option"), "png",
                  "libpng-dev", "libpng", "libpng"),
    SystemLibrary("libdeflate", "libdeflate", ("libdeflate.h",),
                  ("libdeflate_alloc_decompressor", "libdeflate_zlib_decompress"), "deflate",
                  "libdeflate-dev", "libdeflate", "libdeflate"),
)


@dataclass
class Flags:
    """Compiler and linker inputs of the libraries that were found."""

    include_dirs: list = field(default_factory=list)
    library_dirs: list = field(default_factory=list)
    libraries: list = field(default_factory=list)

    def add(self, other: "Flags") -> None:
        for name in ("include_dirs", "library_dirs", "libraries"):
            mine = getattr(self, name)
            mine.extend(v for v in getattr(other, name) if v not in mine)


@dataclass(frozen=True)
class Missing:
    library: SystemLibrary
    reason: str               # one line: what pkg-config and the probe said


class CompilerNotFound(Exception):
    """The C compiler itself cannot be run."""


def _compiler(env) -> list:
    return shlex.split(env.get("CC") or sysconfig.get_config_var("CC") or "cc")


def _pkg_config(lib: SystemLibrary, env) -> tuple[Flags | None, str]:
    """(flags, "") when pkg-config knows the library, else (None, why not)."""
    exe = env.get("PKG_CONFIG") or "pkg-config"
    if not shutil.which(exe, path=env.get("PATH")):
        return None, "no pkg-config"
    try:
        out = subprocess.run([exe, "--cflags", "--libs", lib.pkg_config], capture_output=True, text=True,
                             env=dict(env), timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"pkg-config failed: {e}"
    if out.returncode != 0:
        return None, f"pkg-config has no '{lib.pkg_config}'"
    flags = Flags()
    for tok in shlex.split(out.stdout):
        if tok.startswith("-I"):
            flags.include_dirs.append(tok[2:])
        elif tok.startswith("-L"):
            flags.library_dirs.append(tok[2:])
        elif tok.startswith("-l"):
            flags.libraries.append(tok[2:])
    return flags, ""


def _probe(lib: SystemLibrary, flags: Flags, env, workdir: str) -> str:
    """Compile and link a program using the library; "" when it builds, else the compiler's error."""
    src = os.path.join(workdir, f"probe_{lib.link}.c")
    exe = os.path.join(workdir, f"probe_{lib.link}")
    refs = ", ".join(f"(void (*)(void)){s}" for s in lib.symbols)
    with open(src, "w") as f:
        f.write("".join(f"#include <{h}>\n" for h in lib.headers))
        f.write(f"int main(void) {{\n  void (*volatile used[])(void) = {{{refs}}};\n"
                "  return used[0] == 0;\n}\n")
    cmd = (_compiler(env) + shlex.split(env.get("CPPFLAGS", "")) + shlex.split(env.get("CFLAGS", ""))
           + [f"-I{d}" for d in flags.include_dirs] + [src, "-o", exe] + shlex.split(env.get("LDFLAGS", ""))
           + [f"-L{d}" for d in flags.library_dirs] + [f"-l{n}" for n in flags.libraries])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=dict(env), timeout=120)
    except FileNotFoundError as e:
        raise CompilerNotFound(f"the C compiler '{cmd[0]}' was not found ({e.strerror})") from None
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"running {cmd[0]} failed: {e}"
    if out.returncode == 0:
        return ""
    lines = [ln.strip() for ln in (out.stderr + out.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower() or "cannot find" in ln or "undefined reference" in ln]
    return (errors or lines or [f"{cmd[0]} exited with {out.returncode}"])[0]


def find(libraries=LIBRARIES, env=None) -> tuple[Flags, list]:
    """(flags of the libraries found, [Missing]); raises CompilerNotFound if there is no compiler."""
    env = os.environ if env is None else env
    flags, missing = Flags(), []
    with tempfile.TemporaryDirectory(prefix="deeplake_loader_probe_") as workdir:
        for lib in libraries:
            found, why = _pkg_config(lib, env)
            if found is not None:
                error = _probe(lib, found, env, workdir)
                if not error:
                    flags.add(found)
                    continue
                why = f"pkg-config found '{lib.pkg_config}' but a program using it does not build: {error}"
            else:
                found = Flags(libraries=[lib.link])
                error = _probe(lib, found, env, workdir)
                if not error:
                    flags.add(found)
                    continue
                why = f"{why}; compiling and linking a test program with -l{lib.link}: {error}"
            missing.append(Missing(lib, why))
    return flags, missing


def _install_lines(libs) -> list:
    libs = list(libs)
    return [f"  Debian/Ubuntu:  sudo apt-get install {' '.join(lib.debian for lib in libs)}",
            f"  conda:          conda install -c conda-forge {' '.join(lib.conda for lib in libs)}"]


def missing_message(missing) -> str:
    """The one message setup.py stops with: every missing library, why, and what provides it."""
    n = len(missing)
    lines = [f"deeplake_loader's compiled kernels cannot be built: {n} system "
             f"{'library is' if n == 1 else 'libraries are'} missing "
             "(looked up with pkg-config, then by compiling and linking a test program)."]
    width = max(len(m.library.name) for m in missing)
    for m in missing:
        lines.append(f"  {m.library.name:<{width}}  Debian/Ubuntu package {m.library.debian}, "
                     f"conda package {m.library.conda}")
        lines.append(f"  {'':<{width}}  ({m.reason})")
    lines.append("Install the development " + ("package:" if n == 1 else "packages:"))
    lines += _install_lines(m.library for m in missing)
    lines.append("A library installed elsewhere: PKG_CONFIG_PATH=<prefix>/lib/pkgconfig, or "
                 "CPPFLAGS=-I<prefix>/include LDFLAGS=-L<prefix>/lib.")
    lines.append("No compiler or -dev packages at all: install the binary wheel (`make wheel` builds one "
                 "that carries these libraries inside it).")
    return "\n".join(lines)


def compiler_message(error: CompilerNotFound) -> str:
    return "\n".join([f"deeplake_loader's compiled kernels cannot be built: {error}.",
                      "Install a C compiler (Debian/Ubuntu: sudo apt-get install gcc; conda: conda install -c "
                      "conda-forge c-compiler) or set CC, or install the binary wheel (`make wheel` builds one)."])


def install_hint(error_text: str = "") -> str:
    """What a source build needs; leads with the library an import error names, if any."""
    named = [lib for lib in LIBRARIES if lib.soname + "." in error_text or lib.soname + "-" in error_text]
    lead = ""
    if named:
        lead = ("The system library " + ", ".join(lib.name for lib in named) + " cannot be loaded: install "
                + " / ".join(f"{lib.debian} (Debian/Ubuntu) or {lib.conda} (conda)" for lib in named) + ". ")
    return (lead + "Building from source needs a C compiler and "
            + ", ".join(f"{lib.name} ({lib.debian} / conda {lib.conda})" for lib in LIBRARIES)
            + "; the binary wheel (`make wheel`) needs none of them.")
