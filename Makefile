# Patungan — every install step lives here so a fresh clone (and CI) needs nothing else.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs python3.12; find one (PATH, then pyenv), or say clearly that there is none.
PYTHON312 := $(shell command -v python3.12 2>/dev/null && python3.12 -c '' 2>/dev/null && echo ok)
ifeq ($(findstring ok,$(PYTHON312)),ok)
  PY := $(firstword $(PYTHON312))
else
  PY := $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3))
endif

VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
STAMP := $(VENV)/.installed
PORT ?= 3000
PYTEST_ARGS ?=
# Test files spread over this many processes (2 cores: about half the wall time); 0 runs them in this one.
TEST_WORKERS ?= 2

.PHONY: help run test lint format build deploy bench clean venv

help:
	@echo "make run    - start the local stack on http://127.0.0.1:$(PORT) with demo data"
	@echo "make test   - lint and every test (unit, contract, integration, e2e, schemathesis fuzzing)"
	@echo "             PYTEST_ARGS='-m \"not fuzz\"' leaves the fuzzing out; TEST_WORKERS=0 runs in one process"
	@echo "make lint   - ruff + template lint;  make format - ruff format"
	@echo "make build  - sam build;  make deploy - sam deploy (AWS credentials needed)"
	@echo "make bench  - print performance figures"

$(STAMP): requirements-dev.txt layers/shared/requirements.txt
	@test -n "$(PY)" || { echo "No Python found: install python3.12 (e.g. pyenv install 3.12)"; exit 1; }
	@$(PY) -c 'import sys; assert sys.version_info >= (3, 11), sys.version' || { echo "Python >= 3.11 needed (3.12 preferred), found $(PY)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	PORT=$(PORT) $(BIN)/python -m emulator

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# SAM CLI pins its own boto3/pydantic, so it lives in a venv of its own.
$(SAM_VENV)/.installed:
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null || { echo "sam build needs a python3.12 interpreter on PATH (found: $(PY))"; exit 1; }
	$(PY) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==1.170.0
	touch $@

build: $(SAM_VENV)/.installed
	PATH="$(dir $(PY)):$$PATH" $(SAM_VENV)/bin/sam validate --lint
	PATH="$(dir $(PY)):$$PATH" $(SAM_VENV)/bin/sam build

deploy: build
	$(SAM_VENV)/bin/sam deploy

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .ruff_cache
