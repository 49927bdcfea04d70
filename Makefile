# ntmbench front door. `make help` lists every target.
PY      := .venv/bin/python
VENV    := .venv/.installed
TASK    ?= copy
MODEL   ?= ntm
STEPS   ?= 1000
ARGS    ?=
SWEEP   ?= smoke
TRIALS  ?=
RUNS    ?= runs
OUT     ?= reports/latest

.DEFAULT_GOAL := help
.PHONY: help install demo test test-slow train reproduce report clean

help: ## list every target
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(VENV): pyproject.toml
	python3.11 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[dev]'
	touch $(VENV)

install: $(VENV) ## create .venv and install the project (no-op when up to date)

demo: install ## = make reproduce QUICK=1 WORKERS=2: three NTM seeds (one population) vs the LSTM on copy, its report (CPU, W&B offline)
	.venv/bin/ntmbench demo $(ARGS)

test: install ## the fast test tier (what CI runs)
	.venv/bin/pytest -q

test-slow: install ## the slow test tier
	.venv/bin/pytest -q -m slow

train: install ## train one run: make train TASK=copy MODEL=ntm STEPS=1000 ARGS='--batch-size 32'
	.venv/bin/ntmbench train --task $(TASK) --model $(MODEL) --max-steps $(STEPS) $(ARGS)

reproduce: install ## the paper's NTM-vs-LSTM plan + report: make reproduce [QUICK=1] [TASKS=copy,ngrams] [MODELS=ntm] [SEEDS=0,1] [WORKERS=2] [DEVICES=2]
	.venv/bin/ntmbench reproduce --plan $(if $(QUICK),quick,paper) $(if $(TASKS),--tasks $(TASKS)) $(if $(MODELS),--models $(MODELS)) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(JOBS),$(error JOBS is now WORKERS: make reproduce WORKERS=$(JOBS)))$(if $(WORKERS),--workers $(WORKERS)) $(if $(DEVICES),--accelerator auto --devices $(DEVICES)) $(ARGS)

report: install ## figures, tables, index.html from stored runs: make report RUNS=runs OUT=reports/latest
	.venv/bin/ntmbench report --runs $(RUNS) --out $(OUT) $(ARGS)

.PHONY: sweep sweep-status
sweep: install ## Optuna sweep, a W&B run per trial: make sweep SWEEP=copy-ntm TRIALS=30 ARGS='--workers 2'
	.venv/bin/ntmbench sweep --config sweeps/$(SWEEP).yaml $(if $(TRIALS),--trials $(TRIALS)) $(ARGS)

sweep-status: install ## a sweep's trials table and best trial: make sweep-status SWEEP=copy-ntm
	.venv/bin/ntmbench sweep-status --config sweeps/$(SWEEP).yaml $(ARGS)

.PHONY: bench
bench: install ## speed table, scaling plot, copy convergence -> reports/bench/: make bench [ARGS=--quick]
	.venv/bin/ntmbench bench $(ARGS)

clean: ## remove the virtual environment and run folders
	rm -rf .venv runs
