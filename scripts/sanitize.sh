#!/usr/bin/env bash
# `make sanitize`: build the kernels with AddressSanitizer + UndefinedBehaviorSanitizer in a copy of
# the package (build/sanitize/, so the normal in-place build is untouched), then run the kernel unit
# tests and a short pass of every fuzz target against that build.
#
# Python itself is not built with ASan, so the sanitizer runtimes are preloaded (LD_PRELOAD of
# gcc's libasan/libubsan, which must come first); leak detection is off (the interpreter keeps
# memory until exit by design); the first report aborts the run.
#   SANITIZE_FUZZ_SECONDS   seconds per fuzz target (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DEEPLAKE_LOADER_VENV:-$PWD/.venv}
PY="$VENV/bin/python"
OUT=build/sanitize
FUZZ_SECONDS=${SANITIZE_FUZZ_SECONDS:-20}

mkdir -p "$OUT"
# the package and its tests, fresh (compiled objects of an earlier sanitizer build are kept in
# $OUT/build, so an unchanged kernel is not recompiled)
rm -rf "$OUT/deeplake_loader" "$OUT/tests"
cp -r deeplake_loader tests setup.py pyproject.toml README.md "$OUT/"
find "$OUT/deeplake_loader" -name '*.so' -delete
find "$OUT" -name __pycache__ -prune -exec rm -rf {} +
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g -O1"
echo "[sanitize] building the kernels with $SAN in $OUT"
(cd "$OUT" && CFLAGS="$SAN" LDFLAGS="-fsanitize=address,undefined" \
  flock /tmp/deeplake_loader_build.lock "$PY" setup.py -q build_ext --inplace -b build/lib -t build/tmp >/dev/null)

PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1:detect_odr_violation=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PYTHONPATH="$PWD/$OUT"
cd "$OUT"
echo "[sanitize] kernel unit tests under ASan + UBSan"
LD_PRELOAD="$PRELOAD" "$PY" -m pytest -q -p no:cacheprovider -p no:randomly \
  tests/unit/test_decode.py tests/unit/test_crop_scale.py tests/unit/test_png_fast.py \
  tests/unit/test_chunk_parse.py tests/unit/test_ragged.py tests/unit/test_sampling.py tests/unit/test_shuffle.py \
  tests/unit/test_format_chunk.py tests/unit/test_format_corrupt.py tests/fuzz/test_fuzz_decode.py
echo "[sanitize] fuzz targets, ${FUZZ_SECONDS}s each, under ASan + UBSan"
LD_PRELOAD="$PRELOAD" "$PY" -m tests.fuzz.run --seconds "$FUZZ_SECONDS" --out "$PWD/fuzz"
echo "[sanitize] clean"
