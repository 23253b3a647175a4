# Two commands do all the set-up on a fresh machine (see README.md):
#   make sample   run the whole loop on the sample project, no server needed
#   make test     the whole test suite, installing what it needs (Prometheus, PostgreSQL, Chromium)

VENV    ?= .venv
PYTHON  ?= python3
BIN      = $(VENV)/bin
PG_BIN   = $(firstword $(wildcard /usr/lib/postgresql/*/bin))

.PHONY: sample test system-deps lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

sample: $(BIN)/.installed
	$(BIN)/incident --project . simulate
	$(BIN)/incident --project . checks validate
	$(BIN)/incident --project . check
	$(BIN)/incident --project . list
	@echo "--- notifications delivered to the local channel (reports/notifications.log):"
	@tail -n 3 reports/notifications.log
	@echo "--- the postmortem draft of incident 1, for the managers:"
	$(BIN)/incident --project . report postmortem 1

# Real components for the tests come from Debian's packages; nothing is downloaded by hand.
system-deps:
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null \
	    || [ -z "$(PG_BIN)" ] || ! command -v chromium >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends \
	    prometheus postgresql chromium curl; \
	fi

test: system-deps $(BIN)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check incident tests benchmarks
	$(BIN)/mypy incident
