# Two commands set everything up on a fresh machine: `make run` and `make test`.
# Both create (or reuse) .venv, install the pinned set from requirements.lock into it, and
# start the local stack (Spark, PostgreSQL, S3 on SeaweedFS, Airflow) with all state under .local/.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
STACK  := $(PY) -m mlrecs_devkit.stack
# Every Airflow/Spark command runs with the stack's connections and settings.
WITH_STACK = set -a && eval "$$($(STACK) env | sed 's/^export //')" && set +a &&

.PHONY: lock help install prereqs up down status env run fold-in tune registry published rollback bench bench-serve serve serve-down data airflow airflow-down test test-unit test-integration test-e2e clean

help:
	@echo "make run      install, start the local stack, run the daily DAG once, print a summary"
	@echo "make test     install, start the local stack, run the whole test suite"
	@echo "make up/down/status   start, stop, inspect the local stack (.local/); make up WORKERS=2 splits Spark into two workers"
	@echo "make airflow          start the Airflow UI and services on 127.0.0.1 (prints the URL and login); make airflow-down"
	@echo "make fold-in          fold the ratings apps recorded since the last fold-in into the served lists (USER_ID=<id> prints theirs)"
	@echo "make tune             search both models' params on a validation fold, then run the DAG with the best (TUNE=full for the wide grid; DATASET=...)"
	@echo "make serve            start the recommendations API on 127.0.0.1 (prints its URL); make serve-down"
	@echo "make bench-serve      load the API with wrk while a publish and a rollback switch the set: bench/results/serve-*.json"
	@echo "make registry         the champion and recent models (DATASET=... for another release)"
	@echo "make published        the recommendations version each sink serves, and the kept ones; flags a sink not serving the champion (DATASET=...)"
	@echo "make bench           run the DAG once and measure its parts: bench/results/<name>.json (SIZE=1M for a generated set, or DATASET=...; BENCH_ARGS=...)"
	@echo "make data SIZE=1M     write a MovieLens-shaped archive (ml-25m layout) to .local/generated/ (SEED=...)"
	@echo "make rollback         serve the previous version again in every sink, or change none (VERSION=<model version>, SINKS=postgres,s3)"
	@echo "make test-unit | test-integration | test-e2e   one tier of the suite"
	@echo "make clean    stop the stack and delete .local/ (the lake, databases, Airflow home)"

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml devkit/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11 (or run make PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@mkdir -p .local/logs
	@echo "installing the pinned dependencies into $(VENV) (log: .local/logs/install.log) ..."
	@# --no-deps: requirements.lock is the complete, resolved set; nothing else may sneak in
	@$(PY) -m pip install --no-deps -r requirements.lock > .local/logs/install.log 2>&1 \
	  && $(PY) -m pip install --no-deps -e . -e devkit >> .local/logs/install.log 2>&1 \
	  || { tail -n 30 .local/logs/install.log; echo "error: install failed, see .local/logs/install.log"; exit 1; }
	@touch $(STAMP)

prereqs: install
	@$(PY) -c "import sys; from mlrecs_devkit.stack import check_prerequisites as c; p = c(); [print('error:', x) for x in p]; sys.exit(1 if p else 0)"

up: prereqs
	@$(STACK) up $(if $(WORKERS),--workers $(WORKERS))

down:
	@test -x $(PY) && $(STACK) down || true

status: install
	@$(STACK) status

env: install
	@$(STACK) env

airflow: up
	@$(STACK) airflow-up

airflow-down:
	@test -x $(PY) && $(STACK) airflow-down || true

# The recommendations API, in the background on 127.0.0.1, as the apps' read-only role.
serve: up
	@$(STACK) serve

serve-down:
	@test -x $(PY) && $(STACK) serve-down || true

run: up
	@$(WITH_STACK) $(PY) -m mlrecs_devkit.devrun $(if $(DATASET),--dataset $(DATASET))

# The fold-in DAG once, now: the rating events since its watermark, for every dataset with a champion.
fold-in: up
	@$(WITH_STACK) $(PY) -m mlrecs_devkit.devrun --fold-in $(if $(DATASET),--dataset $(DATASET)) $(if $(USER_ID),--user $(USER_ID))

# The search runs as the DAG's `tune` task; its best params become the dataset's defaults.
tune: up
	@$(WITH_STACK) $(PY) -m mlrecs_devkit.devrun $(if $(DATASET),--dataset $(DATASET)) --param tune=$(or $(TUNE),quick)

registry: up
	@$(WITH_STACK) $(PY) -m movielens_recs.orchestration.registry_cli $(if $(DATASET),--dataset $(DATASET))

published: up
	@$(WITH_STACK) $(PY) -m movielens_recs.orchestration.publish_cli status $(if $(DATASET),--dataset $(DATASET))

rollback: up
	@$(WITH_STACK) $(PY) -m movielens_recs.orchestration.publish_cli rollback $(if $(DATASET),--dataset $(DATASET)) $(if $(VERSION),--to $(VERSION)) $(if $(SINKS),--sinks $(SINKS))

bench: up
	@$(WITH_STACK) $(PY) -m mlrecs_devkit.bench_cli $(if $(DATASET),--dataset $(DATASET)) $(if $(SIZE),--size $(SIZE)) $(BENCH_ARGS)

# needs wrk (Debian: apt-get install wrk); BENCH_ARGS="--users 100000 --connections 64 --seconds 30"
bench-serve: up
	@$(WITH_STACK) $(PY) -m mlrecs_devkit.benchmark.serve_bench $(BENCH_ARGS)

data: install
	@$(PY) -m mlrecs_devkit.synthetic --ratings $(or $(SIZE),1M) $(if $(SEED),--seed $(SEED))

# The suite starts the stack itself (tests/conftest.py) and stops what it started.
test: prereqs
	@$(PY) -c "import sys; from mlrecs_devkit.stack import check_test_prerequisites as c; p = c(); [print('error:', x) for x in p]; sys.exit(1 if p else 0)"
	@$(PY) -m pytest $(PYTEST_ARGS)

test-unit: install
	@$(PY) -m pytest tests/unit tests/dags $(PYTEST_ARGS)

test-integration: prereqs
	@$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: prereqs
	@$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

clean: down
	rm -rf .local

# Re-resolve requirements.lock after changing pyproject.toml's dependencies.
UV_VERSION := 0.13.9
lock: install
	@$(PY) -m pip install -q uv==$(UV_VERSION) 2>/dev/null
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --overrides constraints-overrides.txt -o requirements.lock
