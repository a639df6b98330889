# Yardmaster: `make run` runs everything on this machine, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: help install system-deps run load-sample test lint api-fuzz format bench up down clean

help:
	@echo "make run      install, migrate and run every process locally (API on http://127.0.0.1:8000)"
	@echo "make test     install and run the whole test suite"
	@echo "make load-sample  generate realistic store data and import it into the running stack"
	@echo "make install  create .venv/ with every package installed editable"
	@echo "make system-deps  Debian packages for browser tests and benchmarks (chromium, wrk)"
	@echo "make lint     ruff and mypy"
	@echo "make api-fuzz  schemathesis against a real API from its /openapi.json (a minute or two)"
	@echo "make bench    run the benchmarks (figures go to BENCHMARKS.md)"
	@echo "make up/down  the production-like stack with Docker Compose"

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Yardmaster needs Python 3.11 or newer; set PYTHON=python3.x")'
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV)
	$(UV) sync --frozen --all-packages --compile-bytecode --python $(PYTHON)
	@# PYTHONDONTWRITEBYTECODE=1 machines never cache what they import: compile our own code too
	@# (every process start and every e2e test would otherwise pay it again)
	$(VENV)/bin/python -m compileall -q -j 0 shared/src services tools tests

system-deps:
	tools/system-deps

run: install
	$(VENV)/bin/python tools/devstack.py

load-sample: install
	$(VENV)/bin/python tools/load_sample.py $(ARGS)

test: install
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

api-fuzz: install
	$(VENV)/bin/python tools/api_fuzz.py $(ARGS)

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install system-deps
	$(VENV)/bin/python tests/bench/startup.py
	$(VENV)/bin/python tests/bench/job_control.py
	$(VENV)/bin/python tests/bench/report.py
	$(VENV)/bin/python tests/bench/file_pipeline.py
	$(VENV)/bin/python tests/bench/scheduling.py
	$(VENV)/bin/python tests/bench/turn_queue.py
	$(VENV)/bin/python tests/bench/live_views.py
	$(VENV)/bin/python tests/bench/crash_recovery.py
	$(VENV)/bin/python tests/bench/big_import.py

up:
	docker compose up --build -d
	@echo "API: http://127.0.0.1:8000 (docker compose logs -f to follow)"

down:
	docker compose down

clean:
	rm -rf .tools $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
