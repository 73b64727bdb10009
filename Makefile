# Thin wrappers; the work is in scripts/ and the lakeshift package.
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup services demo test test-unit lint format bench clean

setup:
	@bash scripts/setup.sh

services:
	@bash scripts/services.sh install

demo: setup
	@$(PY) scripts/demo.py

test: setup
	@bash scripts/services.sh install
	@$(PY) -m pytest $(PYTEST_ARGS)

test-unit: setup
	@$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: setup
	@$(PY) -m ruff check lib jobs tests scripts
	@$(PY) -m ruff format --check lib jobs tests scripts
	@$(PY) -m mypy
	@PYTHONPATH=lib .venv/bin/lint-imports --no-cache
	@.venv/bin/hadolint docker/Dockerfile

format: setup
	@$(PY) -m ruff format lib jobs tests scripts
	@$(PY) -m ruff check --fix lib jobs tests scripts

bench: setup
	@failed=""; for b in scripts/bench/*.py; do echo "== $$b"; $(PY) $$b || failed="$$failed $$b"; done; \
	  if [ -n "$$failed" ]; then echo "bench: missed a target or failed:$$failed"; exit 1; fi

# one benchmark: make bench-copy, bench-validate, bench-files, bench-mongo_sql, bench-sync, ...
bench-%: setup
	@$(PY) scripts/bench/$*.py

clean:
	rm -rf .setup-stamps bench-output demo-output spark-warehouse metastore_db derby.log
