# lambdacast - every target creates .venv and installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv lint typecheck validate build test test-unit test-functional test-browser test-js dev bench web-config clean

help:
	@echo "make dev    - run the whole backend locally (lambdacast local + demo page)"
	@echo "make test   - lint, validate the template, run every test"
	@echo "make build  - sam build (python3.13 from pyenv when present)"
	@echo "make bench  - benchmarks -> docs/benchmarks.md"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

validate: venv
	$(BIN)/sam validate --lint --template template.yaml
	$(BIN)/cfn-lint template.yaml

build: venv
	PYENV_VERSION=$${PYENV_VERSION:-3.11.7:3.13.0} $(BIN)/sam build --template template.yaml

test-js:
	node --test web/test/

test: lint validate test-js
	$(BIN)/pytest

dev: venv
	$(BIN)/lambdacast local --template template.yaml --web-dir web

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
