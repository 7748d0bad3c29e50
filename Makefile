# The two commands of the README's quick start, and what they are made of.
# Everything installs into .venv from pyproject.toml; nothing else is needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HEADWATER_HOME ?= $(CURDIR)/.headwater

.PHONY: demo test install install-dev browser lint typecheck pytest bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

## demo: install, run the example flows embedded, then a server, a worker and a deployment
demo: install
	$(BIN)/python examples/demo.py

## browser: Debian's Chromium for the UI tests (apt-get, as root), unless it is there already
browser:
	@[ -x /usr/bin/chromium ] || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq chromium >/dev/null; } \
	  || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || echo "Chromium is missing: 'apt-get install chromium' as root; the UI's browser tests will be skipped"

## test: install dev tools and Chromium, then lint, type-check and run the whole test suite
test: install-dev browser lint typecheck pytest

lint:
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests examples

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest -n 2 --durations=25

## screenshots: the UI's main pages, on a server with example runs, as PNGs in screenshots/
screenshots: install-dev browser
	$(BIN)/python -m tests.ui.screenshots screenshots

## bench: Headwater's figures, and Prefect's side by side when ~/prefect-venv exists
bench: install
	$(BIN)/python bench/run.py $$( [ -x $$HOME/prefect-venv/bin/python ] && echo --prefect-python $$HOME/prefect-venv/bin/python --start-prefect-server )

clean:
	rm -rf $(VENV) .headwater .pytest_cache .mypy_cache .ruff_cache
