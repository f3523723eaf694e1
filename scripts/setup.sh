#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian machine for deeplake_loader: system libraries, Python
# dependencies, and the package itself built in place (compiles the Cython kernels).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

need=()
for pkg in libjpeg62-turbo-dev libpng-dev libdeflate-dev pkg-config gcc make; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi

# torch==2.13.0 is the CPU wheel on this machine's disk; other versions download GBs.
$PY -m pip install -q --disable-pip-version-check \
  "setuptools>=65" wheel "cython>=3.0" "numpy>=1.23" "Pillow>=9" "lz4>=4" \
  "torch==2.13.0" "tensorflow-cpu>=2.15" \
  "pytest>=7" "hypothesis>=6" "psutil>=5" "fsspec>=2023.1" jinja2 pyyaml \
  "s3fs>=2023.1" "moto[server]>=5"
$PY -m pip install -q --disable-pip-version-check --no-build-isolation -e .
