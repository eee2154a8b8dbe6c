# The two commands of the README: `make run` (the service on the embedded SQLite) and
# `make test` (the whole suite). Both build .venv from the lock files. `make demo` shows a sync
# at work against a simulated Slack; `make infra` adds the Pulumi program's packages.
#
# uv builds the venv when it is on PATH (or importable by $(PYTHON)); otherwise the standard
# library's venv and pip do, so any Python >= 3.11 works, including a distribution Python that
# refuses `pip install` outside a venv (PEP 668). Nothing is installed into the system Python.

PYTHON ?= python3
PYTHON_VERSION ?= 3.11
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= .syncbot-data
UV ?= $(shell command -v uv 2>/dev/null || { $(PYTHON) -m uv --version >/dev/null 2>&1 && echo "$(PYTHON) -m uv"; })

ifeq ($(strip $(UV)),)
VENV_CREATE = $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "syncbot needs Python >= 3.11, $(PYTHON) is " + sys.version.split()[0])' \
	&& $(PYTHON) -m venv $(VENV) \
	|| { echo "make: '$(PYTHON) -m venv' failed; install the venv module (Debian/Ubuntu: apt install python3-venv) or uv" >&2; exit 1; }
PIP_INSTALL = $(PY) -m pip install --quiet --disable-pip-version-check
else
VENV_CREATE = $(UV) venv --python $(PYTHON_VERSION) $(VENV)
PIP_INSTALL = $(UV) pip install --python $(PY) --quiet
endif

COMPOSE_ENV ?= .env
MATRIX_SERVER_NAME ?= localhost

.PHONY: run test demo infra lint clean

$(PY):
	$(VENV_CREATE)

# Stamps keep repeat runs fast; they are rebuilt whenever a lock file or pyproject changes.
$(VENV)/.runtime: requirements/runtime.txt pyproject.toml | $(PY)
	$(PIP_INSTALL) -r requirements/runtime.txt
	$(PIP_INSTALL) --no-deps -e .
	@touch $@

$(VENV)/.dev: requirements/dev.txt pyproject.toml | $(PY)
	$(PIP_INSTALL) -r requirements/dev.txt
	$(PIP_INSTALL) --no-deps -e .
	@touch $@ $(VENV)/.runtime

# The Pulumi packages (stacks/, policies/, `python -m stacks.plan`), pinned by the dev lock.
$(VENV)/.infra: requirements/dev.txt pyproject.toml | $(VENV)/.runtime
	$(PIP_INSTALL) -c requirements/dev.txt -e '.[infra]'
	@touch $@

run: $(VENV)/.runtime
	LOCAL_DEVELOPMENT=true SYNCBOT_DATA_DIR=$(DATA_DIR) $(VENV)/bin/syncbot serve

demo: $(VENV)/.runtime
	$(VENV)/bin/syncbot demo

infra: $(VENV)/.infra
	@echo "Pulumi packages installed in $(VENV): try $(PY) -m stacks.plan Pulumi.dev.yaml"

# The secrets compose.yaml reads, made once and never overwritten: the database, the stored
# tokens and the homeserver's registration depend on them. Readable by their owner only.
$(COMPOSE_ENV): | $(VENV)/.runtime
	@umask 077 && { \
		$(PY) -c 'import secrets as s; [print(f"{n}={s.token_urlsafe(48)}") for n in ("TOKEN_ENCRYPTION_KEY", "POSTGRES_PASSWORD", "SYNCBOT_METRICS_TOKEN", "SYNAPSE_MACAROON_SECRET_KEY", "SYNAPSE_FORM_SECRET", "SYNAPSE_REGISTRATION_SHARED_SECRET")]' \
		&& $(VENV)/bin/syncbot registration --generate --url http://syncbot:3000 --server-name $(MATRIX_SERVER_NAME); \
	} > $@.tmp && mv $@.tmp $@ && echo "wrote $@: the secrets of compose.yaml (keep it private)"

test: $(VENV)/.dev
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/actionlint .github/workflows/*.yml

clean:
	rm -rf $(VENV) $(DATA_DIR) .pytest_cache .ruff_cache .mypy_cache
