# `make run` and `make test` work on a fresh clone: they create .venv and install what is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PG_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

.PHONY: run test test-browser lint format clean bench bench-full

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)  ## serve on http://127.0.0.1:8000 with the embedded SQLite default
	$(BIN)/loanapi serve --host 127.0.0.1 --port 8000

# The suite runs on SQLite, and on PostgreSQL too when a server answers on 127.0.0.1:5432
# (or LOANAPI_TEST_POSTGRES_URL names one). In CI (CI=true) PostgreSQL is required.
test: $(STAMP)
	@url="$${LOANAPI_TEST_POSTGRES_URL:-}"; \
	if [ -z "$$url" ] && $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2)" 2>/dev/null; then \
		url="$(PG_URL)"; \
	fi; \
	if [ -z "$$url" ]; then echo "PostgreSQL not found on 127.0.0.1:5432: running on SQLite only"; fi; \
	LOANAPI_TEST_POSTGRES_URL="$$url" $(BIN)/pytest $(PYTEST_ARGS)

test-browser: $(STAMP)  ## Swagger UI in headless Chromium (needs Debian's chromium)
	$(BIN)/pytest tests/browser -m browser $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests alembic
	$(BIN)/ruff format --check src tests alembic
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests alembic
	$(BIN)/ruff format src tests alembic

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache loanapi.db loanapi.db-*

# Benchmarks (bench/README.md): PostgreSQL on 127.0.0.1:5432; results in bench/results/.
# The bench extra (chart, progress bar, orjson, PyJWT) is installed when one is missing, and wrk
# from Debian's packages when it is missing and we are root (else the Python load generator).
BENCH_DEPS = $(BIN)/python -c "import matplotlib, orjson, tqdm, jwt" 2>/dev/null \
	|| $(BIN)/python -m pip install --quiet -e '.[dev,bench]'; \
	command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	&& apt-get install -y -qq wrk >/dev/null 2>&1; } \
	|| echo "wrk not found: the Python load generator drives the benchmark"

bench: $(STAMP)  ## ~3 minutes: 10,000 loans, loanapi vs the reference floor
	@$(BENCH_DEPS)
	$(BIN)/python bench/run.py --quick $(BENCH_ARGS)

bench-full: $(STAMP)  ## 1,000,000 loans (seeded once, reused) plus the 10k database for scale
	@$(BENCH_DEPS)
	$(BIN)/python bench/run.py --full $(BENCH_ARGS)
