# regbench: `make run` runs the main comparison on MNIST-1D, `make test` runs every test, `make test-fast`
# the ones that start no process and train little (the edit loop: pytest -m 'not slow').
# Each target creates .venv on first use. TORCH picks the torch wheel installed before the package
# (2.13.0 is the CPU wheel this project is developed on; a plain torch requirement would pull CUDA).
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test test-fast bench clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamp files: reinstall when pyproject.toml changes.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/regbench +suite=chapter9 $(ARGS)

# Tests run on every core (pytest-xdist; worksteal: a worker that is done takes queued tests of a busy one).
# ARGS="-n 0" runs them in one process, ARGS="tests/test_x.py" one file.
PYTEST := $(BIN)/python -m pytest -n auto --dist worksteal

test: $(VENV)/.installed-dev
	$(PYTEST) $(ARGS)

test-fast: $(VENV)/.installed-dev
	$(PYTEST) -m "not slow" $(ARGS)

bench: $(VENV)/.installed-dev
	$(BIN)/python -m regbench.bench $(ARGS)

clean:
	rm -rf outputs/runs outputs/multirun .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
