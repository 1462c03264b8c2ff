# shoplake: `make demo` runs the platform, `make test` runs the tests (both install what they need).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install lock docker-images system-deps engines engines-full demo test test-unit bench bench-start lint fmt stop clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-12s %s\n", $$1, $$2}'

# Every venv installs exact versions with hashes from config/locks/ (`make lock` refreshes
# them), with uv: nothing is resolved on a user's machine. uv reads the platform's
# certificate store, as pip does through its config (a network that re-signs TLS).
LOCKS := config/locks
UV := $(BIN)/uv
export UV_SYSTEM_CERTS ?= 1
UV_COMPILE := $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)

# A new .venv is hard links of a venv cached per lock (~/.cache/shoplake/venv-*, built and
# byte-compiled once: lite/venv_template.py); an existing one, or where that cannot be
# (SHOPLAKE_VENV_CACHE=0, another file system), is synced and compiled in place.
$(STAMP): pyproject.toml $(LOCKS)/shoplake.txt $(LOCKS)/uv.txt
	{ [ ! -e $(VENV) ] && $(PYTHON) -m lite.venv_template $(VENV); } || { \
	$(PYTHON) -m venv $(VENV) && \
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCKS)/uv.txt && \
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes --compile-bytecode \
		$(LOCKS)/shoplake.txt; }
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## create .venv with shoplake and its dev tools, from the lock

lock: install ## re-resolve config/locks/ (UPGRADE=1: newest versions); then run make test
	$(UV_COMPILE) pyproject.toml --extra dev -o $(LOCKS)/shoplake.txt
	$(UV_COMPILE) pyproject.toml $(LOCKS)/airflow.in -o $(LOCKS)/airflow.txt
	$(UV_COMPILE) $(LOCKS)/pyflink.in -o $(LOCKS)/pyflink.txt
	$(UV_COMPILE) $(LOCKS)/seaweedfs.in -o $(LOCKS)/seaweedfs.txt
	$(UV_COMPILE) $(LOCKS)/jdk.in -o $(LOCKS)/jdk.txt
	{ echo "# uv, bootstrapped with pip by make install: its entry in shoplake.txt"; \
	  awk '/^uv==/{p=1; print; next} p && /^ /{print; next} {p=0}' $(LOCKS)/shoplake.txt; \
	} > $(LOCKS)/uv.txt

# Debian packages: the browser for the dashboard test, Maven for the Java engines, wrk for
# the API benchmark, Docker's engine and debootstrap (the Debian base image where no image
# registry answers) for the compose tests. Installed with apt-get
# as root (or passwordless sudo); otherwise the line says what is missing.
SYSTEM_PKGS := chromium chromium-driver maven wrk docker-compose docker.io debootstrap
system-deps: ## install the Debian packages the tests and benchmarks need, when missing
	@missing=""; for p in $(SYSTEM_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "not root: please install$$missing (apt-get); tests needing them are skipped"; exit 0; fi; \
	$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing

engines: install ## fetch/build the lite engines once (cached outside the repo)
	$(BIN)/shoplake services install

engines-full: install system-deps ## also the full-profile engines and the Docker CLI plugins
	$(BIN)/shoplake services install --full
	$(BIN)/shoplake docker install

docker-images: install ## build the images both compose files run (Debian base by debootstrap if need be)
	$(BIN)/shoplake docker images --profile lite
	$(BIN)/shoplake docker images --profile full

demo: engines ## start the platform: services, 90 days of data if empty, lake catch-up, dashboard, alerts, API, the live shop at its history's volume
	$(BIN)/shoplake up --seed-if-empty --simulate 1x

test: engines-full ## install everything, then run unit, integration, full-profile and end-to-end tests on real services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install ## only the pure, fast tests
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: engines-full ## benchmarks (results in benchmarks/results/)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

bench-start: install ## make demo in a fresh clone: seconds to a live dashboard (default ports: no demo may run)
	$(BIN)/python -m benchmarks.bench_demo_start $(BENCH_ARGS)

lint: install ## ruff, mypy and the import layer rules (pyproject.toml [tool.importlinter])
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: install ## format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

stop: ## stop the native services
	$(BIN)/shoplake services stop

clean: stop ## stop services and delete local data (.shoplake)
	rm -rf .shoplake
