# ColorLab: `make demo` opens the app on the bundled colorizers; `make test` runs the fast suite.
# Both create .venv on first use, so they work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# glibc malloc settings measured 2-4x faster for torch on this CPU (see docs/architecture.md);
# they must be in the environment before the process starts.
export MALLOC_MMAP_THRESHOLD_ := 33554432
export MALLOC_TRIM_THRESHOLD_ := 10000000000
export MALLOC_TOP_PAD_ := 1073741824
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_TELEMETRY := 1
# OpenMP threads that spin while waiting steal the other core from anything sharing the machine (measured:
# a 12-MP colour conversion took 9 s instead of 0.73 s next to another process); passive costs ~1% when idle.
export OMP_WAIT_POLICY := PASSIVE

.PHONY: setup demo test lint format bench clean-venv

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, alone: the pinned CPU build must win before anything can ask for another torch
	$(PY) -m pip install --quiet torch==2.13.0
	# the project itself (editable, with the test tools), its dependencies held to requirements.txt's exact pins
	$(PY) -m pip install --quiet -c requirements.txt -e ".[dev]"
	# lpips ships the calibrated LPIPS layers we use; its torchvision dependency must not come along
	$(PY) -m pip install --quiet --no-deps lpips==0.1.4
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) app.py

test: setup
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

bench: setup
	for script in benchmarks/*.py; do $(PY) $$script || exit 1; done

clean-venv:
	rm -rf $(VENV)
