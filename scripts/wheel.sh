#!/usr/bin/env bash
# `make wheel`: a binary wheel that needs nothing on the machine it is installed on but glibc and
# Python. The current source tree (uncommitted edits included, build products left out) is packed as
# an sdist and the wheel is built from that sdist (so the sdist is known to be complete); then
# auditwheel repairs the wheel: it copies libjpeg-turbo, libpng, libdeflate and libgomp into
# deeplake_loader.libs/ inside the wheel, points the kernels at them (RPATH, via patchelf), and gives
# the wheel the most compatible manylinux tag this machine's build allows.
#
#   bash scripts/wheel.sh [OUT_DIR]      # default: dist/  (prints the wheel's path last)
#
# Uses the project's virtual environment (.venv/, or $DEEPLAKE_LOADER_VENV), which has build,
# auditwheel and patchelf (scripts/requirements.txt). The wheel is for this Python version only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${DEEPLAKE_LOADER_VENV:-$ROOT/.venv}
PY=$VENV/bin/python
OUT=$(realpath -m "${1:-dist}")
work=$(mktemp -d "${TMPDIR:-/tmp}/deeplake_loader_wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. The source as it is now, without build products (.so, generated .c, build/, .venv/).
mkdir "$work/src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard \
    | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$work/src"
else
  tar --exclude=.venv --exclude=build --exclude=dist --exclude='*.so' --exclude='*.egg-info' \
      --exclude='deeplake_loader/_kernels/*.c' -cf - . | tar -xf - -C "$work/src"
fi

# 2. sdist, then the wheel from it (the venv's setuptools, Cython and numpy: no download).
echo "[wheel] building the sdist and a wheel from it"
"$PY" -m build --no-isolation --outdir "$work/dist" "$work/src" >"$work/build.log" 2>&1 \
  || { tail -n 60 "$work/build.log"; echo "[wheel] build failed (log above)" >&2; exit 1; }

# 3. Repair: system libraries into the wheel, best manylinux tag (auditwheel's default --plat auto).
mkdir -p "$OUT"
echo "[wheel] auditwheel repair"
PATH="$VENV/bin:$PATH" "$VENV/bin/auditwheel" repair --wheel-dir "$work/repaired" "$work/dist"/*.whl \
  >"$work/repair.log" 2>&1 || { cat "$work/repair.log"; exit 1; }
wheel=$(ls "$work/repaired"/*.whl)
cp "$wheel" "$work/dist"/*.tar.gz "$OUT"/
"$VENV/bin/auditwheel" show "$OUT/$(basename "$wheel")" 2>/dev/null | sed -n '1,4p' | sed 's/^/[wheel] /'
echo "[wheel] sdist: $OUT/$(basename "$work/dist"/*.tar.gz)"
echo "$OUT/$(basename "$wheel")"
