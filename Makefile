# Two entry points: `make run` (set up, then the main job) and `make test` (set up, then the tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# On these machines `torch==2.13.0` resolves to a CPU wheel on disk; a bare `torch` could pull CUDA.
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.equirl-installed

.PHONY: setup run test test-slow lint bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) scripts/cartpole.py

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check equirl agents envs scripts tests
	$(VENV)/bin/mypy

bench: setup
	$(PY) scripts/benchmark_overhead.py

clean:
	rm -rf $(VENV) runs
