# One command each: `make demo`, `make test`, `make dev`, `make docs`.
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

.PHONY: install demo test dev docs lint bench clean

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
	$(VENV)/bin/dg dev

docs: install
	$(VENV)/bin/lakehouse docs

lint: install
	$(VENV)/bin/ruff check lakehouse lakehouse_tests bench

bench: install
	$(PY) bench/telegram_etl.py
	$(PY) bench/tweets.py
	$(PY) bench/movies.py

clean:
	rm -rf data .dagster_home dbt_project/target dbt_project/logs
