#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian machine for deeplake_loader. It changes nothing global but the
# system libraries the kernels link (apt: libjpeg-turbo, libpng, libdeflate, pkg-config, a C
# compiler): every Python package goes into the project's virtual environment (.venv/, or
# $DEEPLAKE_LOADER_VENV), and the package is built in place inside it.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_PY=${BASE_PYTHON:-python3}
VENV=${DEEPLAKE_LOADER_VENV:-$PWD/.venv}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

apt_install() {
  echo "[setup] apt-get install $*"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

need=()
for pkg in libjpeg62-turbo-dev libpng-dev libdeflate-dev pkg-config gcc make; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating the virtual environment $VENV"
  if ! "$BASE_PY" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    apt_install python3-venv
    "$BASE_PY" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"

# Python packages: installed again only when scripts/requirements.txt changes.
stamp="$VENV/.requirements-$(sha256sum scripts/requirements.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] pip install -r scripts/requirements.txt into $VENV"
  "$PY" -m pip install -q --disable-pip-version-check -r scripts/requirements.txt
  rm -f "$VENV"/.requirements-*
  touch "$stamp"
fi

# The package itself, editable, kernels compiled in place (incremental: only changed kernels rebuild).
if ! "$PY" -c "import deeplake_loader" >/dev/null 2>&1 || [ -n "$(find deeplake_loader/_kernels -newer "$stamp" \( -name '*.pyx' -o -name '*.pxd' -o -name '*.c' -o -name '*.h' \) -print -quit)" ]; then
  echo "[setup] building deeplake_loader in place"
  "$PY" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
  touch "$stamp"
fi
