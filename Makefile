# make train / make test bootstrap .venv themselves (pinned by requirements.lock).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install train test lint format bench clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)  ## train the default model (the study's CNN) on the built-in photos
	$(PY) train.py $(ARGS)

test: $(STAMP)  ## the whole test suite
	$(PY) -m pytest tests $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: $(STAMP)  ## speed/memory benchmarks; figures go to BENCHMARKS.md
	$(PY) -m benchmarks $(ARGS)

clean:
	rm -rf logs outputs multirun wandb .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
