# The two commands of the README's quick start, and what they are made of.
# Everything installs into .venv from pyproject.toml; nothing else is needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HEADWATER_HOME ?= $(CURDIR)/.headwater

.PHONY: demo test install install-dev lint typecheck pytest bench clean

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

## test: install dev tools, then lint, type-check and run the whole test suite
test: install-dev lint typecheck pytest

lint:
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests examples

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest

## bench: Headwater's figures, and Prefect's side by side when ~/prefect-venv exists
bench: install
	$(BIN)/python bench/run.py $$( [ -x $$HOME/prefect-venv/bin/python ] && echo --prefect-python $$HOME/prefect-venv/bin/python --start-prefect-server )

clean:
	rm -rf $(VENV) .headwater .pytest_cache .mypy_cache .ruff_cache
