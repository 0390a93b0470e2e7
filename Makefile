# The README's two commands, `make demo` and `make test`, do all the set-up themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml Makefile | cksum | cut -d' ' -f1)

.PHONY: demo test install system-deps bench lock dev portal clean

# Debian packages the product and its tests use: headless Chromium (board pack PDFs, page
# tests) and poppler (PDF to PNG in tests).
SYSTEM_COMMANDS := chromium:chromium pdftoppm:poppler-utils

install: $(STAMP)

# Bytecode is compiled at install (uv does not by default, unlike pip): where Python may not
# write it (PYTHONDONTWRITEBYTECODE, as on our CI machines) every process, every dbt start-up
# included, would otherwise compile dagster, dbt and Great Expectations from source, seconds each.
$(STAMP): pyproject.toml requirements.lock Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "uv>=0.9,<1"
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q -j 0 orchestration benchmarks >/dev/null
	rm -f $(VENV)/.installed-*
	touch $@

system-deps:
	@missing=""; for pair in $(SYSTEM_COMMANDS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "please install these Debian packages first:$$missing"; exit 1; fi; \
	fi

# PRESET: the demo's size (district by default; small for a quick look, county for a million people).
PRESET ?= district

demo: $(STAMP) system-deps
	$(BIN)/partnership demo --preset $(PRESET)

test: $(STAMP) system-deps
	$(BIN)/lint-imports
	$(BIN)/python tests/lint_dbt.py
	$(BIN)/python -m pytest

bench: $(STAMP) system-deps
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS) --portal-args="$(PORTAL_BENCH_ARGS)"

# Re-resolve the pinned set after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

# The Dagster UI on the same data folder as `make demo`.
# PORT: where the UI listens (default 3000).
PORT ?= 3000

dev: $(STAMP)
	$(BIN)/partnership dev --port $(PORT)

# The partnership portal on http://127.0.0.1:8000, on the same data folder (docs/portal.md).
portal: $(STAMP)
	$(BIN)/partnership portal

clean:
	rm -rf data/landing data/archive data/warehouse.duckdb* data/releases data/reports data/reference data/demo_truth data/portal/ops_snapshot.duckdb
