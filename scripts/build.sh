#!/usr/bin/env bash
# Rebuild the compiled kernels in place (after editing or adding a _kernels/*.pyx or src/*.c), with
# the project's virtual environment (.venv/, or $DEEPLAKE_LOADER_VENV; `make setup` creates it).
# Serialised with a lock so that concurrent builds never write the same generated file.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DEEPLAKE_LOADER_VENV:-$PWD/.venv}
exec flock /tmp/deeplake_loader_build.lock "$VENV/bin/python" setup.py -q build_ext --inplace "$@"
