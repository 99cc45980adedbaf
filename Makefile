# One way to install, run and test NTX from a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-unit lint schemas demo clean

NODE_TOOLS := tools/asyncapi/node_modules/.installed

install: $(STAMP) $(NODE_TOOLS)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The official AsyncAPI parser, for the contract test (npm ci: exactly the lock file).
$(NODE_TOOLS): tools/asyncapi/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix tools/asyncapi --no-audit --no-fund --silent && touch $@; \
	else echo "make install: npm not found; the AsyncAPI parser test will be skipped"; fi

run: install
	$(BIN)/ntx run

demo: install
	$(BIN)/ntx demo

test: install
	$(BIN)/pytest -q

test-unit: install
	$(BIN)/pytest -q -m "not infra"

lint: install
	$(BIN)/ruff check shared services tests
	$(BIN)/ruff format --check shared services tests
	$(BIN)/mypy shared services/intake/domain services/scheduler/domain services/alerts/domain

schemas: install
	$(BIN)/ntx schemas

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis tools/asyncapi/node_modules
