#!/usr/bin/env bash
# Rebuild the compiled kernels in place (after editing or adding a _kernels/*.pyx or src/*.c).
# Serialised with a lock so that concurrent builds never write the same generated file.
set -euo pipefail
cd "$(dirname "$0")/.."
exec flock /tmp/deeplake_loader_build.lock python3 setup.py -q build_ext --inplace "$@"
