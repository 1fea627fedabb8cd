# eCAF: `make run` serves the app (gunicorn, one process) on SQLite with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install assets run test bench bench-smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Front-end assets from npm (versions pinned in package-lock.json), built into static/build/.
ASSETS := static/build/.built
GOVUK := node_modules/govuk-frontend/dist/govuk
BPMNJS := node_modules/bpmn-js/dist

$(ASSETS): package-lock.json frontend/app.scss
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p static/build/bpmn-js
	npx sass --load-path=node_modules --style=compressed --no-source-map frontend/app.scss static/build/app.css
	cp $(GOVUK)/govuk-frontend.min.js static/build/
	cp -r $(GOVUK)/assets/images static/build/
	cp $(BPMNJS)/bpmn-navigated-viewer.production.min.js $(BPMNJS)/bpmn-modeler.production.min.js static/build/bpmn-js/
	cp -r $(BPMNJS)/assets/. static/build/bpmn-js/
	touch $(ASSETS)

assets: $(ASSETS)

run: install assets
	$(BIN)/ecaf db upgrade
	$(BIN)/ecaf processes deploy
	$(BIN)/ecaf demo
	$(BIN)/ecaf serve --host $(HOST) --port $(PORT)

# Two workers, whole files each (browser tests share one server per file); TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: install assets
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# Benchmarks print figures, never assert them. Each makes its own scratch PostgreSQL database on the
# server BENCH_POSTGRES and drops it afterwards (bench/scratch.py). `make bench` runs them all at full
# size (many minutes: a million episodes for the lists); `make bench-smoke` runs every one at a tiny
# size and fails if one breaks or misses a figure (CI runs it after the tests).
BENCH_POSTGRES ?= postgresql://postgres@127.0.0.1:5432
bench: install
	$(BIN)/python bench/engine.py --postgres=$(BENCH_POSTGRES)
	$(BIN)/python bench/state.py --postgres=$(BENCH_POSTGRES)
	$(BIN)/python bench/timers.py --postgres=$(BENCH_POSTGRES)
	$(BIN)/python bench/http_completions.py --postgres=$(BENCH_POSTGRES)
	$(BIN)/python bench/admin_lists.py
	$(BIN)/python bench/access.py
	$(BIN)/python bench/access.py --postgres=$(BENCH_POSTGRES)
	$(BIN)/python bench/expressions.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/forms.py
	$(BIN)/python bench/migration.py --postgres=$(BENCH_POSTGRES)

bench-smoke: install
	$(BIN)/python bench/smoke.py

clean:
	rm -rf $(VENV) instance .pytest_cache static/build node_modules
