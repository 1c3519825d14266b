# lambdacast - every target creates .venv and installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv prepare lint typecheck validate build test test-unit test-functional test-browser test-js dev bench soak web-config clean

help:
	@echo "make dev    - run the whole backend locally (lambdacast local + demo page)"
	@echo "make test   - lint, validate the template, run every test"
	@echo "make prepare - install what lambdacast local needs (Python environments, AWS SDK for Node.js)"
	@echo "make build  - sam build (python3.13 from pyenv when present)"
	@echo "make bench  - benchmarks -> docs/benchmarks.md"
	@echo "make soak   - the delivery soak under injected faults, large (minutes; figures in docs/fanout.md)"
	@echo "make web-config - web/config.json <- the deployed stack's WebSocketURL"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $(STAMP)

venv: $(STAMP)

# What lambdacast local needs to serve the project and the test apps: each function's Python environment
# (the interpreter its Runtime names, its requirements) and the AWS SDK for Node.js, installed with pip and
# npm into the user cache (~/.cache/lambdacast) once. Tests and the emulator then never reach the network.
PREPARE_TEMPLATES := template.yaml $(sort $(wildcard tests/functional/apps/*/template.yaml))
prepare: venv
	@$(BIN)/lambdacast local --prepare $(addprefix --template ,$(PREPARE_TEMPLATES)) >/dev/null

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

test-browser: prepare
	$(BIN)/pytest tests/browser

test: lint validate test-js prepare
	$(BIN)/pytest

# AuthMode=optional: anonymous pages work, and the demo's sign-in box gets tokens from the
# local-only minter (--dev-tokens), whose random secret the real authorizer reads from embedded SSM.
DEV_SECRET := /lambdacast/local/auth-secret
# The emulator installs what the project's own functions need on first start (the test apps' runtimes,
# which `prepare` also installs, are not needed here).
dev: venv
	$(BIN)/lambdacast local --template template.yaml --web-dir web \
	  --parameter-overrides AuthMode=optional AuthSecretParameterName=$(DEV_SECRET) \
	  --dev-tokens $(DEV_SECRET)

# Point the demo at a deployed stack: web/config.json <- the stack's WebSocketURL output.
# The stack name comes from samconfig.toml (CONFIG_ENV=prod for the prod one), or STACK=name.
CONFIG_ENV ?= default
web-config: venv
	@$(BIN)/python -c 'import boto3, json, sys, tomllib; \
	env, stack = sys.argv[1], sys.argv[2] or tomllib.load(open("samconfig.toml", "rb"))[sys.argv[1]]["global"]["parameters"]["stack_name"]; \
	outputs = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", []); \
	url = next((o["OutputValue"] for o in outputs if o["OutputKey"] == "WebSocketURL"), None); \
	url or sys.exit(f"stack {stack} has no WebSocketURL output (deployed yet?)"); \
	open("web/config.json", "w").write(json.dumps({"webSocketUrl": url}, indent=2) + "\n"); \
	print(f"web/config.json: webSocketUrl = {url} (stack {stack})")' '$(CONFIG_ENV)' '$(STACK)'

bench: prepare
	$(BIN)/python -m bench

# The soak of tests/functional/soak at its large size (make test runs it small): prints its figures.
# LAMBDACAST_SOAK_SEED and LAMBDACAST_SOAK_FAULTS change the workload's seed and the fault spec.
soak: prepare
	LAMBDACAST_SOAK_SCALE=large $(BIN)/pytest tests/functional/soak/test_soak.py -s -q -p no:cacheprovider

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
