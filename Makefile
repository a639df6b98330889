# Yardmaster: `make run` runs everything on this machine, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
# Test processes run side by side (pytest-xdist): the end-to-end tests mostly wait for the
# processes they start, so four keep a 2-core machine busy. TEST_WORKERS=0 runs them in one.
TEST_WORKERS ?= 4
XDIST := $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist worksteal)

.PHONY: help install system-deps run load-sample test test-unit test-fast lint api-fuzz format bench up down clean

help: ## this list, read from the Makefile's own `## ` comments
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-zA-Z_\/-]*:[^#]*## / {printf "make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Yardmaster needs Python 3.11 or newer; set PYTHON=python3.x")'
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV) ## create .venv/ with every package installed editable, bytecode compiled
	$(UV) sync --frozen --all-packages --compile-bytecode --python $(PYTHON)
	@# PYTHONDONTWRITEBYTECODE=1 machines never cache what they import: compile our own code too
	@# (every process start and every e2e test would otherwise pay it again)
	$(VENV)/bin/python -m compileall -q -j 0 shared/src services tools tests

system-deps: ## Debian packages for browser tests and benchmarks (chromium, wrk)
	tools/system-deps

run: install ## install, migrate and run every process locally (API on http://127.0.0.1:8000)
	$(VENV)/bin/python tools/devstack.py

load-sample: install ## generate realistic store data and import it into the running stack
	$(VENV)/bin/python tools/load_sample.py $(ARGS)

test: install ## the whole suite (unit, integration, e2e, browser): the README's command
	$(VENV)/bin/python -m pytest $(XDIST) $(PYTEST_ARGS)

test-unit: install ## unit tests only: pure code, no server needed (seconds)
	$(VENV)/bin/python -m pytest tests/unit $(PYTEST_ARGS)

test-fast: install ## unit and integration tests: real Redis and databases, no process started
	$(VENV)/bin/python -m pytest $(XDIST) tests/unit tests/integration $(PYTEST_ARGS)

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

api-fuzz: install ## schemathesis against a real API from its /openapi.json (a minute or two)
	$(VENV)/bin/python tools/api_fuzz.py $(ARGS)

format: install ## ruff's fixes and formatting, applied
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install system-deps ## run the benchmarks (figures go to BENCHMARKS.md)
	$(VENV)/bin/python tests/bench/startup.py
	$(VENV)/bin/python tests/bench/job_control.py
	$(VENV)/bin/python tests/bench/report.py
	$(VENV)/bin/python tests/bench/file_pipeline.py
	$(VENV)/bin/python tests/bench/scheduling.py
	$(VENV)/bin/python tests/bench/turn_queue.py
	$(VENV)/bin/python tests/bench/live_views.py
	$(VENV)/bin/python tests/bench/crash_recovery.py
	$(VENV)/bin/python tests/bench/big_import.py

up: ## the production-like stack with Docker Compose, in the background
	docker compose up --build -d
	@echo "API: http://127.0.0.1:8000 (docker compose logs -f to follow)"

down: ## stop the Compose stack
	docker compose down

clean: ## remove .venv/, .tools/, .data/ and caches
	rm -rf .tools $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
