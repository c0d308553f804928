# The two commands of the README: `make demo` and `make test`. Both set up .venv first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast bench clean

setup:
	@bash scripts/setup_env.sh

demo: setup
	$(VENV)/bin/interrvos demo

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

bench: setup
	$(PY) bench/bench_extract.py
	$(PY) bench/bench_extract_nodes.py
	$(PY) bench/bench_evaluate.py
	$(PY) bench/bench_annotate.py
	$(PY) bench/bench_autoscale.py
	$(PY) bench/bench_train.py
	$(PY) bench/bench_model.py
	$(PY) bench/bench_serve.py

clean:
	rm -rf runs
