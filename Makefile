# Two commands do all set-up on a fresh machine:
#   make run    virtualenv, dependencies, SQLite migrations, demo data, server on 127.0.0.1:5000
#   make test   virtualenv, dependencies, the test suite (SQLite; PostgreSQL when
#               PARLEY_TEST_DATABASE_URL names one)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
FLASK   = $(BIN)/flask --app wsgi

.PHONY: run test lint bench bench-classifier clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(FLASK) db upgrade
	$(FLASK) demo load
	$(FLASK) run --host 127.0.0.1 --port 5000

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .

# Needs wrk (apt-get install wrk); seeds 1M comments in /tmp the first time (a few minutes).
bench: $(VENV)/.installed
	$(BIN)/python bench/http_bench.py $(BENCH_ARGS)

bench-classifier: $(VENV)/.installed
	$(BIN)/python bench/bench_classifier.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
