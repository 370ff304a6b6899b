# make train / make test bootstrap .venv themselves (pinned by requirements.lock).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install train test lint format bench results clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev,onnx]"
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

# `make results`: train every conf/model/*.yaml on the built-in photos (the model's default
# settings; ARGS go to train.py), then score them all with evaluate.py (EVAL_ARGS) in one table.
RESULTS_DIR := logs/results/$(shell date +%Y-%m-%d_%H-%M-%S)
RESULTS_MODELS ?= $(sort $(basename $(notdir $(wildcard conf/model/*.yaml))))
EVAL_ARGS ?=

results: $(STAMP)  ## README's results table: RESULTS_DIR/evaluate/results.md
	set -e; checkpoints=""; \
	for model in $(RESULTS_MODELS); do \
		$(PY) train.py model=$$model hydra.run.dir=$(RESULTS_DIR)/train/$$model $(ARGS); \
		checkpoints="$$checkpoints$${checkpoints:+, }$$model: $(RESULTS_DIR)/train/$$model/checkpoints/last.ckpt"; \
	done; \
	$(PY) evaluate.py "checkpoints={$$checkpoints}" hydra.run.dir=$(RESULTS_DIR)/evaluate $(EVAL_ARGS)
	@echo "results: $(RESULTS_DIR)/evaluate/results.md"

# `make demo`: the local web page (colorize-demo) with the colorizers under MODELS: train.py runs
# (default) or a folder of release weight files, e.g. MODELS=~/.cache/bw-colorization
MODELS ?= logs/train
.PHONY: demo
demo: $(STAMP)  ## a local web page to colorize photos: http://127.0.0.1:8765
	$(PY) -m colorization.demo --models $(MODELS) $(ARGS)

clean:
	rm -rf logs outputs multirun wandb .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
