# The entry points of README.md. Each does its own (idempotent) set-up first; everything runs
# inside the project's virtual environment (.venv/, or $DEEPLAKE_LOADER_VENV).
VENV ?= $(if $(DEEPLAKE_LOADER_VENV),$(DEEPLAKE_LOADER_VENV),$(CURDIR)/.venv)
PYTHON := $(VENV)/bin/python
# seconds per fuzz target (5 targets): make fuzz, make sanitize, and the sanitizer pass of make test
FUZZ_SECONDS ?= 60
SANITIZE_FUZZ_SECONDS ?= 20
TEST_SANITIZE_FUZZ_SECONDS ?= 5

.PHONY: setup demo test bench wheel fuzz sanitize

setup:
	DEEPLAKE_LOADER_VENV=$(VENV) bash scripts/setup.sh

demo: setup
	$(PYTHON) examples/demo.py

# the whole suite, then a short sanitizer pass: kernels built with ASan + UBSan + coverage, their
# unit tests and each fuzz target for a few seconds
test: setup
	$(PYTHON) -m pytest -q tests
	DEEPLAKE_LOADER_VENV=$(VENV) FUZZ_SECONDS=$(TEST_SANITIZE_FUZZ_SECONDS) bash scripts/sanitize.sh

bench: setup
	$(PYTHON) bench/run_all.py

# A self-contained binary wheel in dist/ (libjpeg-turbo, libpng, libdeflate inside; scripts/wheel.sh).
wheel: setup
	DEEPLAKE_LOADER_VENV=$(VENV) bash scripts/wheel.sh dist

fuzz: setup
	DEEPLAKE_LOADER_VENV=$(VENV) FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/sanitize.sh --fuzz-only

sanitize: setup
	DEEPLAKE_LOADER_VENV=$(VENV) FUZZ_SECONDS=$(SANITIZE_FUZZ_SECONDS) bash scripts/sanitize.sh
