# The two commands of the README: `make demo` and `make test`. Both set up .venv first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast proof bench clean

setup:
	@bash scripts/setup_env.sh

demo: setup
	$(VENV)/bin/interrvos demo

test: setup
	$(PY) -m pytest

# The long referring proof (issue 15): pretraining, ReVIOsA in three modes, held-out evaluation (< 60 min, 2 cores).
proof: setup
	$(VENV)/bin/interrvos proof --config jobs/configs/proof.yaml

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
