# eCAF: `make run` serves the app on SQLite with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/ecaf db upgrade
	$(BIN)/ecaf processes deploy
	$(BIN)/ecaf demo
	$(BIN)/ecaf run --host $(HOST) --port $(PORT)

test: install
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) instance .pytest_cache
