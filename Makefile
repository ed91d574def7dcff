# The two quickstart commands: `make run` (set up + serve) and `make test` (set up + whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# pytest-xdist workers of `make test` (each builds its own template databases once).
TEST_WORKERS ?= auto

.PHONY: run test install bench clean

run: install
	$(BIN)/compliance setup
	$(BIN)/compliance serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

test: install
	$(BIN)/ruff check compliance worker tests bench
	$(BIN)/mypy compliance/engine
	sh scripts/ensure-chromium
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

bench: install
	$(BIN)/python bench/engine_throughput.py

clean:
	rm -rf $(VENV) instance .pytest_cache
