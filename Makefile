# make train / make test bootstrap .venv themselves (pinned by requirements.lock).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install train test test-fast lint format bench bench-smoke results clean

# torch-fidelity is a test-only reference for FID (tests/test_fid.py), kept off sys.path in
# $(VENV)/test-reference: installed normally, torchmetrics would import it and with it torchvision,
# which does not install beside the pinned torch.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[train,demo,video,onnx,dev]"
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --upgrade --target $(VENV)/test-reference \
		-c requirements.lock torch-fidelity
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)  ## train the default model (the study's CNN) on the built-in photos
	$(PY) train.py $(ARGS)

test: $(STAMP)  ## the whole test suite (what CI runs)
	$(PY) -m pytest tests $(ARGS)

test-fast: $(STAMP)  ## the suite without its slow and browser tests: the edit loop (under 3 minutes on 2 cores)
	$(PY) -m pytest tests -m "not slow and not browser" $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# the official colorizers code, compared against by `benchmarks/bench_infer.py`; --no-deps: its
# networks need only torch, which it would otherwise replace. Offline, its rows are skipped.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -c requirements.lock rz-colorization \
		&& touch $(BENCH_STAMP) || echo "rz-colorization not installed: the official-code rows are skipped"

bench: $(BENCH_STAMP)  ## speed benchmarks, figures streamed and written to BENCHMARKS.md (ARGS=infer: one)
	$(PY) -m benchmarks $(ARGS)

bench-smoke: $(BENCH_STAMP)  ## every benchmark once at its smallest size, nothing written: they still run (CI)
	BENCH_SMOKE=1 $(PY) -m benchmarks $(ARGS)

# `make results`: train every conf/model/*.yaml on the built-in photos (the model's default
# settings; ARGS go to train.py), then score them all with evaluate.py (EVAL_ARGS) in one table.
# RESULTS_ARGS_<model> adds settings for one model: a smoke scale for those too heavy for a CPU.
RESULTS_DIR := logs/results/$(shell date +%Y-%m-%d_%H-%M-%S)
RESULTS_MODELS ?= $(sort $(basename $(notdir $(wildcard conf/model/*.yaml))))
EVAL_ARGS ?=
RESULTS_ARGS_ddcolor ?= trainer.max_epochs=1 data.crop_size=64 ++model.input_size=256

results: $(STAMP)  ## README's results table: RESULTS_DIR/evaluate/results.md
	set -e; checkpoints=""; \
	$(foreach model,$(RESULTS_MODELS), \
		$(PY) train.py model=$(model) hydra.run.dir=$(RESULTS_DIR)/train/$(model) $(RESULTS_ARGS_$(model)) $(ARGS); \
		checkpoints="$$checkpoints$${checkpoints:+, }$(model): $(RESULTS_DIR)/train/$(model)/checkpoints/last.ckpt";) \
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
