# The two entry points of README.md. Each does its own (idempotent) set-up first.
PYTHON ?= python3

.PHONY: setup demo test bench

setup:
	bash scripts/setup.sh

demo: setup
	$(PYTHON) examples/demo.py

test: setup
	$(PYTHON) -m pytest -q tests

bench: setup
	$(PYTHON) bench/run_all.py
