# eCAF: `make run` serves the app (gunicorn, one process) on SQLite with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install assets run test bench clean

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

# PostgreSQL figures use the scratch database BENCH_POSTGRES (created if missing, its schema dropped).
BENCH_POSTGRES ?= postgresql://postgres@127.0.0.1:5432/ecaf_bench
bench: install
	$(BIN)/python bench/engine.py --postgres=$(BENCH_POSTGRES)
	$(BIN)/python bench/expressions.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/access.py
	$(BIN)/python bench/migration.py
	$(BIN)/python bench/http_completions.py --postgres=$(BENCH_POSTGRES)

clean:
	rm -rf $(VENV) instance .pytest_cache static/build node_modules
