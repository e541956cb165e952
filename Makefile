# The template's own commands. On a fresh machine with Python 3.11+, make and git:
#   make demo   render the default project, install it, serve it on 127.0.0.1:8000
#   make test   run the template's test suite
#   make bench  measure the default and all-on renders, write BENCHMARKS.md
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BUILD := build
# uv creates virtual environments here: it must never download an interpreter.
export UV_PYTHON_DOWNLOADS := never

# The venv is rebuilt when the dev dependency list ([dependency-groups] dev) changes.
DEV_HASH := $(shell $(PYTHON) -c 'import hashlib, json, tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["dependency-groups"]["dev"]; print(hashlib.sha256(json.dumps(deps).encode()).hexdigest()[:16])')
STAMP := $(VENV)/.dev-$(DEV_HASH)

# Three workers on two cores, fed one test at a time (--dist load --maxschedchunk 1), in
# collection order, where the conftest puts the install tests first: each render's own
# pytest, then its mypy. Those long poles then spread over the workers instead of
# queueing on the one that holds their file (--dist loadfile did that: 21 minutes). A
# render's suite waits on servers, workers and timeouts for a quarter of its time: a
# third worker fills that (2 workers: 23 minutes, and that without the PostgreSQL and
# Redis URLs of .ci/run; 3 workers with them: 20).
# Renders and installs are shared across workers (tests/installs.py, file locks).
PYTEST_WORKERS ?= 3
PYTEST_ARGS ?=

# The demo renders with python_version = the running interpreter's major.minor when that
# is one of the template's choices: the default (3.12) may not exist on this machine
# (pyenv here exposes only 3.11) and uv must not download one. Otherwise the default.
PY_MAJOR_MINOR := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
DEMO_PYTHON := $(filter $(PY_MAJOR_MINOR),3.11 3.12 3.13)
DEMO_SLUG := ai_service
DEMO_DIR := $(BUILD)/$(DEMO_SLUG)
# `make demo DEMO_AUTH=1` keeps the random key of $(DEMO_DIR)/.env (the render's own
# Makefile writes it, as its `make install` does); by default the empty API_KEYS= and
# ALLOW_ANONYMOUS=true variables override it (environment beats .env): the service,
# which refuses every call without a key, then serves anyone.
DEMO_AUTH ?=
# `make bench BENCH_ARGS="--quick --no-write"`: any option of `python -m benchmarks --help`.
BENCH_ARGS ?=

.PHONY: help venv test lint demo bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-6s %s\n", $$1, $$2}'

venv: $(STAMP) ## create .venv with the dev tools (cookiecutter, pytest, ruff, ...)

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --group dev
	rm -f $(VENV)/.dev-*
	touch $@

# Without PYTHONDONTWRITEBYTECODE (some machines set it): pytest then keeps the modules
# it rewrites for its assertions (its plugins' too, some 300) instead of rewriting them in
# every process, some 5 s each here.
test: venv ## run the template's test suite
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -n $(PYTEST_WORKERS) --dist load --maxschedchunk 1 $(PYTEST_ARGS)

lint: venv ## ruff on the hooks, tests and benchmarks; mypy on the tests and benchmarks
	$(BIN)/ruff check hooks tests benchmarks
	$(BIN)/ruff format --check hooks tests benchmarks
	$(BIN)/mypy

demo: venv ## render the default project into build/, install it and serve it on :8000
	$(BIN)/cookiecutter --no-input -f -o $(BUILD) . $(if $(DEMO_PYTHON),python_version=$(DEMO_PYTHON))
	$(MAKE) --no-print-directory -C $(DEMO_DIR) .env PYTHON=$(PYTHON)  # as its make install does
	cd $(DEMO_DIR) && $(abspath $(BIN))/uv venv --allow-existing --python $(PYTHON) .venv
	cd $(DEMO_DIR) && $(abspath $(BIN))/uv pip install --quiet --python .venv/bin/python -e . --group dev
	@key=$$(sed -n 's/^API_KEYS=//p' $(DEMO_DIR)/.env); \
	echo; \
	echo "Serving $(DEMO_DIR) on http://127.0.0.1:8000 with the fake model provider (Ctrl-C stops)."; \
	echo "  Docs:  http://127.0.0.1:8000/docs"; \
	if [ -z "$(DEMO_AUTH)" ]; then \
	echo "  Authentication is off: ALLOW_ANONYMOUS=true and an empty API_KEYS= override the"; \
	echo "  random key in $(DEMO_DIR)/.env (production refuses to start with ALLOW_ANONYMOUS)."; \
	echo "  Try:   curl -s localhost:8000/api/v1/generate -H 'content-type: application/json' -d '{\"prompt\":\"hi\"}'"; \
	echo "  With the key instead: make demo DEMO_AUTH=1, then"; \
	else \
	echo "  Authentication is on, with the key from $(DEMO_DIR)/.env:"; \
	fi; \
	echo "  curl -s localhost:8000/api/v1/generate -H 'content-type: application/json' -H \"Authorization: Bearer $$key\" -d '{\"prompt\":\"hi\"}'"; \
	echo
	cd $(DEMO_DIR) && $(if $(DEMO_AUTH),,API_KEYS= ALLOW_ANONYMOUS=true )LLM_PROVIDER=fake HOST=127.0.0.1 PORT=8000 exec .venv/bin/python -m $(DEMO_SLUG)

bench: venv ## benchmark the renders against their baselines and write BENCHMARKS.md (~7 min)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean: ## remove build/, caches and .venv
	rm -rf $(BUILD) $(VENV) .pytest_cache .ruff_cache .mypy_cache
	find tests hooks benchmarks -name __pycache__ -type d -prune -exec rm -rf {} +
