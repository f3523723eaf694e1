# The two entry points of README.md. Each does its own (idempotent) set-up first; everything runs
# inside the project's virtual environment (.venv/, or $DEEPLAKE_LOADER_VENV).
VENV ?= $(if $(DEEPLAKE_LOADER_VENV),$(DEEPLAKE_LOADER_VENV),$(CURDIR)/.venv)
PYTHON := $(VENV)/bin/python

.PHONY: setup demo test bench wheel

setup:
	DEEPLAKE_LOADER_VENV=$(VENV) bash scripts/setup.sh

demo: setup
	$(PYTHON) examples/demo.py

test: setup
	$(PYTHON) -m pytest -q tests

bench: setup
	$(PYTHON) bench/run_all.py

# A self-contained binary wheel in dist/ (libjpeg-turbo, libpng, libdeflate inside; scripts/wheel.sh).
wheel: setup
	DEEPLAKE_LOADER_VENV=$(VENV) bash scripts/wheel.sh dist
