# Two commands do all set-up: `make run` and `make test`. Everything else is a step they use.
SHELL := /bin/bash
PYTHON ?= python3
# Use uv from PATH when present, else bootstrap it into .tools/ with pip.
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test chromium check lint format bench bench-export bench-sweep bench-chart bench-etr mutate clean

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

$(BIN)/attune: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

## Serve on ATTUNE_HOST:ATTUNE_PORT (default 127.0.0.1:8000) against ATTUNE_DATABASE_URL
## (default: SQLite under ./var/); migrates, and on an empty database seeds a demo org.
run: $(BIN)/attune
	$(BIN)/attune run

## The whole test suite. SQLite by default; set ATTUNE_TEST_DATABASE_URL for PostgreSQL.
test: $(BIN)/attune chromium
	$(BIN)/pytest

## Debian's Chromium, which the rating page's browser tests drive (tests/browser/). Installed
## with apt-get when absent and we are root; elsewhere those tests skip and say why.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
			|| echo "chromium could not be installed: the browser tests will skip"; \
	else \
		echo "chromium is absent and apt-get cannot install it here: the browser tests will skip"; \
	fi

## Lint, format check, strict typing and the import contracts (pyproject.toml [tool.importlinter]).
check: $(BIN)/attune
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

format: $(BIN)/attune
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Submission benchmark on PostgreSQL: the service against a minimal floor app (see bench/README.md).
bench: $(BIN)/attune
	bench/run

## Export benchmark on PostgreSQL: every dataset x format x mode of 1,000,000 rows vs psql COPY of the same rows.
bench-export: $(BIN)/attune
	$(BIN)/python bench/export.py

## Sweep benchmark on PostgreSQL: one sweep of 100,000 active episodes (goal: within 10 s).
bench-sweep: $(BIN)/attune
	$(BIN)/python bench/sweep.py

## Chart benchmark: a 40-session episode's chart built and rendered (goal: SVG under 50 ms p50).
bench-chart: $(BIN)/attune
	$(BIN)/python bench/chart.py

## Expected-response fit of 10,000 episodes (goal: under 5 s) and the simulation figures.
bench-etr: $(BIN)/attune
	$(BIN)/python bench/etr.py

## Mutation testing of the pure core with mutmut (configured in pyproject.toml [tool.mutmut]);
## slow, so outside CI. MUTATE_CHILDREN sets how many mutants run at once (default 2).
MUTATE_CHILDREN ?= 2
mutate: $(BIN)/attune
	$(BIN)/mutmut run --max-children $(MUTATE_CHILDREN)
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache mutants
