# One command each: `make demo`, `make test`, `make dev`, `make docs`, `make notebooks`.
# `make dev PORT=3001`, `make docs PORT=8081`: another port than the default (3000, 8080).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -name '*.sql' -o -name '*.yml' | grep -v target/)

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export LAKEHOUSE_ROOT ?= $(CURDIR)/data/lake
export LAKEHOUSE_DUCKDB_PATH ?= $(CURDIR)/data/gold.duckdb

.PHONY: install demo test dev docs notebooks lint bench soak clean

install: $(STAMP) $(MANIFEST)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

$(MANIFEST): $(STAMP) $(DBT_SOURCES)
	cd dbt_project && ../$(VENV)/bin/dbt parse --quiet --profiles-dir .

demo: install
	mkdir -p $(DAGSTER_HOME) && cp -n deploy/dagster.yaml $(DAGSTER_HOME)/dagster.yaml || true
	$(PY) -m lakehouse.demo

test: install
	$(VENV)/bin/ruff check lakehouse lakehouse_tests bench
	$(VENV)/bin/dg check defs
	$(VENV)/bin/pytest -q lakehouse_tests

dev: install
	mkdir -p $(DAGSTER_HOME) && cp -n deploy/dagster.yaml $(DAGSTER_HOME)/dagster.yaml || true
	$(VENV)/bin/dg dev --port $(or $(PORT),3000)

docs: install
	$(VENV)/bin/lakehouse docs --port $(or $(PORT),8080)

# Executes every notebook on the lake (nbclient; outputs are not written back). A local lake
# with no gold tables yet is built first with `make demo`. The test suite runs them too
# (lakehouse_tests/analysts/test_notebooks.py, on a demo lake of its own and on S3).
notebooks: install
	@if [[ "$(LAKEHOUSE_ROOT)" != s3://* && ! -d "$(LAKEHOUSE_ROOT)/gold" ]]; then $(MAKE) demo; fi
	$(VENV)/bin/jupyter execute --timeout=600 notebooks/*.ipynb

lint: install
	$(VENV)/bin/ruff check lakehouse lakehouse_tests bench

bench: install
	$(PY) bench/telegram_etl.py
	$(PY) bench/tweets.py
	$(PY) bench/movies.py

# The production-like stack (PostgreSQL, moto's S3 server, webserver, daemon, webhook, stream)
# fed by the sample backends; `make soak MINUTES=3` for a shorter one. Needs root (PostgreSQL).
soak: install
	$(PY) bench/soak.py --minutes $(or $(MINUTES),10)

clean:
	rm -rf data .dagster_home dbt_project/target dbt_project/logs
