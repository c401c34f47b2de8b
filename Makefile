# Two commands set everything up on a fresh machine with Python 3.11 or newer:
#   make run   virtualenv, install, migrate, first admin, serve on http://127.0.0.1:5000
#   make test  virtualenv with dev extras, the test tools (newman from npm, Debian's Chromium),
#              then lint and the whole suite
# Any Python >= 3.11: make run PYTHON=python3.13
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 2
PYTEST_ARGS ?=
BENCH_ARGS ?=
# The browser the tests drive (Debian's package; Playwright cannot download its own here).
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "shortener needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) -V 2>&1 || echo missing)."; \
		echo "Install one, or name it: make run PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/shortener db upgrade
	$(BIN)/shortener users bootstrap
	$(BIN)/shortener serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint node_modules/.bin/newman $(CHROMIUM)
	$(BIN)/python -m pytest -W error $(PYTEST_ARGS)

# newman (Postman's runner), at the version package-lock.json holds, into ./node_modules.
node_modules/.bin/newman: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		{ apt-get update && apt-get install -y nodejs npm; }
	@command -v npm >/dev/null 2>&1 || \
		{ echo "npm is missing: install Node.js and npm (Debian: apt-get install -y nodejs npm)"; exit 1; }
	npm install --no-audit --no-fund
	touch $@

# Chromium and its WebDriver from Debian, when we may install them; otherwise the browser tests
# skip and say so.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		echo "apt-get update && apt-get install -y chromium chromium-driver"; \
		apt-get update && apt-get install -y chromium chromium-driver; \
	else \
		echo "$(CHROMIUM) is missing and we are not root: the browser tests will skip."; \
		echo "Install it with: sudo apt-get install -y chromium chromium-driver"; \
	fi

# The Postman collection and environment in postman/, made from the OpenAPI document (the app
# is built in-process: no server). tests/integration/test_postman.py fails when they are stale.
.PHONY: postman
postman: $(VENV)/.installed
	$(BIN)/python postman/build.py

# Seeds 100,000 links and 1,000,000 visits, then drives a bare Flask redirect and shortener on
# SQLite and PostgreSQL with wrk (installed from Debian if missing). About 10 minutes.
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache *.egg-info
