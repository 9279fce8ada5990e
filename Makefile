# A newcomer's two commands: `make run` (the main job) and `make test` (ruff, mypy, pytest).
# Both create .venv with pip and install every package editable with the tested versions.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := -e packages/space -e packages/trainer -e packages/policies -e packages/analysis -e apps/cli[ray]
STAMP := $(VENV)/.installed

.PHONY: setup run test lint typecheck pytest bench clean

$(STAMP): constraints.txt requirements-dev.txt packages/*/pyproject.toml apps/cli/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt $(PACKAGES) -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

# The main job: the paper's protocol on the 8-node space at the quick preset's scale.
# PTB comes from NASEVAL_DATA_DIR, the user cache, or is downloaded and verified.
run: setup
	$(BIN)/nas run compare --space 8

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

test: lint typecheck pytest

bench: setup
	$(BIN)/pytest benchmarks --benchmark-only

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
