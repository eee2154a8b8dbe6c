# The two commands of the README: `make run` (the service on the embedded SQLite) and
# `make test` (the whole suite). Both build .venv from the lock files with uv.

PYTHON_VERSION ?= 3.11
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= .syncbot-data
# uv from PATH, or as a module of the system Python (installed on first use).
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: run test lint check-uv clean

check-uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet uv

$(PY): | check-uv
	$(UV) venv --python $(PYTHON_VERSION) $(VENV)

# Stamps keep repeat runs fast; they are rebuilt whenever a lock file or pyproject changes.
$(VENV)/.runtime: requirements/runtime.txt pyproject.toml | $(PY) check-uv
	$(UV) pip install --python $(PY) --quiet -r requirements/runtime.txt
	$(UV) pip install --python $(PY) --quiet --no-deps -e .
	@touch $@

$(VENV)/.dev: requirements/dev.txt pyproject.toml | $(PY) check-uv
	$(UV) pip install --python $(PY) --quiet -r requirements/dev.txt
	$(UV) pip install --python $(PY) --quiet --no-deps -e .
	@touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	LOCAL_DEVELOPMENT=true SYNCBOT_DATA_DIR=$(DATA_DIR) $(VENV)/bin/syncbot serve

test: $(VENV)/.dev
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/actionlint .github/workflows/*.yml

clean:
	rm -rf $(VENV) $(DATA_DIR) .pytest_cache .ruff_cache
