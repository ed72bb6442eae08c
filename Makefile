# Two commands do all set-up: `make run` (the product) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/eval
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint format venv dev-venv test-sqlite test-postgres clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (found " + sys.version.split()[0] + ")")'
	@$(PYTHON) -m venv $(VENV) || { echo "Could not create a virtualenv: install python3-venv (Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.installed

venv: $(VENV)/.installed
dev-venv: $(VENV)/.installed-dev

run: venv
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(BIN)/python manage.py bootstrap
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(BIN)/python run_services.py

# House rules: ruff (with complexity at most 10), the format, the import layers (pyproject.toml),
# every module under eval/ and coreproject/ under 350 lines (tests/module_size.py).
lint: dev-venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python tests/module_size.py

format: dev-venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The suite on SQLite and, when reachable, on PostgreSQL (REQUIRE_POSTGRES=1 makes it
# mandatory): both passes at once, each under pytest-xdist (tests/run_suite.py;
# TEST_WORKERS=N per pass, TEST_PASSES=serial for one after the other).
test: lint
	$(BIN)/python tests/run_suite.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
