# shoplake: `make demo` runs the platform, `make test` runs the tests (both install what they need).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install system-deps engines engines-full demo test test-unit bench lint fmt stop clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv with shoplake and its dev tools

# Debian packages: the browser for the dashboard test, Maven for the Java engines, wrk for
# the API benchmark, docker-compose to validate the compose files. Installed with apt-get
# as root (or passwordless sudo); otherwise the line says what is missing.
SYSTEM_PKGS := chromium chromium-driver maven wrk docker-compose
system-deps: ## install the Debian packages the tests and benchmarks need, when missing
	@missing=""; for p in $(SYSTEM_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "not root: please install$$missing (apt-get); tests needing them are skipped"; exit 0; fi; \
	$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing

engines: install ## fetch/build the lite engines once (cached outside the repo)
	$(BIN)/shoplake services install

engines-full: install system-deps ## also the full-profile engines (Trino, Airflow's own venv)
	$(BIN)/shoplake services install --full

demo: engines ## start the platform: services, 30 days of data if empty, lake catch-up, dashboard, alerts, API, a 5 orders/s simulator
	$(BIN)/shoplake up --seed-if-empty --simulate 5

test: engines-full ## install everything, then run unit, integration, full-profile and end-to-end tests on real services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install ## only the pure, fast tests
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: engines-full ## benchmarks (results in benchmarks/results/)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

lint: install ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install ## format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

stop: ## stop the native services
	$(BIN)/shoplake services stop

clean: stop ## stop services and delete local data (.shoplake)
	rm -rf .shoplake
