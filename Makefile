# ntmbench front door. `make help` lists every target.
PY      := .venv/bin/python
VENV    := .venv/.installed
TASK    ?= copy
MODEL   ?= ntm
STEPS   ?= 1000
ARGS    ?=

.DEFAULT_GOAL := help
.PHONY: help install demo test test-slow train clean

help: ## list every target
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV): pyproject.toml
	python3.11 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[dev]'
	touch $(VENV)

install: $(VENV) ## create .venv and install the project (no-op when up to date)

demo: install ## the main job on the embedded defaults: sample every task (CPU, W&B offline)
	.venv/bin/ntmbench demo $(ARGS)

test: install ## the fast test tier (what CI runs)
	.venv/bin/pytest -q

test-slow: install ## the slow test tier
	.venv/bin/pytest -q -m slow

train: install ## train one run: make train TASK=copy MODEL=ntm STEPS=1000 ARGS='--batch-size 32'
	.venv/bin/ntmbench train --task $(TASK) --model $(MODEL) --max-steps $(STEPS) $(ARGS)

clean: ## remove the virtual environment and run folders
	rm -rf .venv runs
