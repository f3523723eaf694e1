#!/usr/bin/env bash
# `make sanitize` and `make fuzz`: the kernels built with clang, AddressSanitizer +
# UndefinedBehaviorSanitizer + libFuzzer coverage instrumentation (-fsanitize=fuzzer-no-link), in a
# copy of the package (build/sanitize/, so the normal in-place gcc build is untouched); then
#   sanitize.sh              the kernel unit tests, then every fuzz target, under the sanitizers
#   sanitize.sh --fuzz-only  every fuzz target only (make fuzz)
#   FUZZ_SECONDS             seconds per fuzz target (default 20)
#
# Python itself is not built with the sanitizers, so their runtime is preloaded: clang's ASan runtime
# (which carries UBSan) merged with libFuzzer into one shared library, build/sanitize/
# asan_with_fuzzer.so. Preloading ASan and libFuzzer separately would send the coverage callbacks to
# ASan's weak no-op definitions; merged, libFuzzer's strong ones win and atheris sees the C code's
# edges, not only the Python's. Leak detection is off (the interpreter keeps memory until exit by
# design); the first report fails the run. Needs clang 14 with its runtimes and libomp (apt:
# clang-14 libclang-rt-14-dev libomp-14-dev, installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DEEPLAKE_LOADER_VENV:-$PWD/.venv}
PY="$VENV/bin/python"
OUT=build/sanitize
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
FUZZ_ONLY=0
[ "${1:-}" = "--fuzz-only" ] && FUZZ_ONLY=1

find_clang() { command -v clang-14 || command -v clang || true; }
CLANG=$(find_clang)
runtime() { [ -n "$CLANG" ] && "$CLANG" -print-file-name="$1"; }
if [ -z "$CLANG" ] || [ ! -f "$(runtime libclang_rt.fuzzer_no_main-x86_64.a)" ] \
    || ! echo 'int main(void){return 0;}' | "$CLANG" -fopenmp -x c - -o /dev/null 2>/dev/null; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "[sanitize] apt-get install clang-14 libclang-rt-14-dev libomp-14-dev"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang-14 libclang-rt-14-dev libomp-14-dev >/dev/null
  CLANG=$(find_clang)
fi
ASAN_A=$(runtime libclang_rt.asan-x86_64.a)
FUZZER_A=$(runtime libclang_rt.fuzzer_no_main-x86_64.a)
mkdir -p "$OUT"
RT="$PWD/$OUT/asan_with_fuzzer.so"
if [ ! -f "$RT" ] || [ "$RT" -ot "$ASAN_A" ]; then
  echo "[sanitize] merging $(basename "$ASAN_A") and $(basename "$FUZZER_A") into $RT"
  tmp=$(mktemp -d)
  cp "$ASAN_A" "$tmp/asan.a"
  ar d "$tmp/asan.a" asan_preinit.cpp.o  # .preinit_array is not allowed in a shared library
  "${CLANG/clang/clang++}" -Wl,--whole-archive "$FUZZER_A" "$tmp/asan.a" -Wl,--no-whole-archive \
    -lpthread -ldl -shared -o "$RT"
  rm -rf "$tmp"
fi

# the package and its tests, fresh (objects of an earlier build stay in $OUT/build: an unchanged
# kernel is not compiled again)
rm -rf "$OUT/deeplake_loader" "$OUT/tests"
cp -r deeplake_loader tests setup.py pyproject.toml README.md "$OUT/"
find "$OUT/deeplake_loader" -name '*.so' -delete
find "$OUT" -name __pycache__ -prune -exec rm -rf {} +
SAN="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
echo "[sanitize] building the kernels with $(basename "$CLANG") $SAN in $OUT"
KEY=$(echo "$CLANG $SAN" | sha1sum | cut -c1-12)  # objects of another compiler or flags are never reused
(cd "$OUT" && CC="$CLANG" LDSHARED="$CLANG -shared" CFLAGS="$SAN" LDFLAGS="-fsanitize=address,undefined" \
  flock /tmp/deeplake_loader_build.lock "$PY" setup.py -q build_ext --inplace -b "build/lib-$KEY" -t "build/tmp-$KEY" \
  >/dev/null 2>build.log) || { cat "$OUT/build.log" >&2; exit 1; }
nm "$OUT"/deeplake_loader/_kernels/decode*.so | grep __sanitizer_cov_8bit_counters_init >/dev/null \
  || { echo "[sanitize] the kernels were not built with coverage instrumentation" >&2; exit 1; }

export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1:detect_odr_violation=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PYTHONPATH="$PWD/$OUT"
cd "$OUT"
echo "[sanitize] canary: a heap overflow in code built the same way must be reported"
printf '#include <stdlib.h>\nint canary(int i) { char *p = malloc(8); p[i] = 1; int r = p[0]; free(p); return r; }\n' > canary.c
"$CLANG" $SAN -shared -fPIC canary.c -o canary.so
if LD_PRELOAD="$RT" "$PY" -c "import ctypes; ctypes.CDLL('./canary.so').canary(8)" >/dev/null 2>canary.log \
    || ! grep -q "heap-buffer-overflow" canary.log; then
  echo "[sanitize] the canary was not caught: the sanitizer runtime is not active" >&2
  cat canary.log >&2
  exit 1
fi
if [ "$FUZZ_ONLY" = 0 ]; then
  echo "[sanitize] kernel unit tests under ASan + UBSan"
  LD_PRELOAD="$RT" "$PY" -m pytest -q -p no:cacheprovider -p no:randomly \
    tests/unit/test_decode.py tests/unit/test_crop_scale.py tests/unit/test_decode_view.py tests/unit/test_png_fast.py \
    tests/unit/test_chunk_parse.py tests/unit/test_ragged.py tests/unit/test_sampling.py tests/unit/test_shuffle.py \
    tests/unit/test_format_chunk.py tests/unit/test_format_corrupt.py tests/fuzz/test_fuzz_decode.py
fi
echo "[sanitize] fuzz targets, ${FUZZ_SECONDS}s each, under ASan + UBSan, coverage from the C kernels and the Python"
LD_PRELOAD="$RT" "$PY" -m tests.fuzz.run --seconds "$FUZZ_SECONDS" --out "$PWD/fuzz"
echo "[sanitize] clean"
