# shoplake: `make demo` runs the platform, `make test` runs the tests (both install what they need).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install engines demo test test-unit bench lint fmt stop clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv with shoplake and its dev tools

engines: install ## fetch/build the native engines once (cached outside the repo)
	$(BIN)/shoplake services install

demo: engines ## start the services, seed 30 days if empty, backfill the lake, print the gold summary
	$(BIN)/shoplake services start
	$(BIN)/shoplake seed --if-empty
	$(BIN)/shoplake medallion backfill --start $$(date -u -d '29 days ago' +%F) --end $$(date -u +%F)
	$(BIN)/shoplake sql "SELECT * FROM daily_summary ORDER BY date"
	@echo "services keep running: 'make stop' (or '$(BIN)/shoplake services stop') stops them"

test: engines ## install everything, then run unit, integration and end-to-end tests on real services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install ## only the pure, fast tests
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: engines ## benchmarks (results in benchmarks/results/)
	$(BIN)/python -m benchmarks.run

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
