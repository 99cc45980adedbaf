# One way to install, run and test NTX from a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The Apache Kafka broker (deploy/kafka/pom.xml), copied out of Maven's local
# repository, which keeps the downloads: a second install fetches nothing.
KAFKA_LIBS := $(VENV)/share/ntx-kafka/libs
KAFKA_STAMP := $(VENV)/share/ntx-kafka/.fetched

.PHONY: install kafka kcat run test test-unit lint schemas demo lock clean

NODE_TOOLS := tools/asyncapi/node_modules/.installed

install: $(STAMP) $(NODE_TOOLS) kafka kcat

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,devstack]'
	touch $(STAMP)

# The official AsyncAPI parser, for the contract test (npm ci: exactly the lock file).
$(NODE_TOOLS): tools/asyncapi/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix tools/asyncapi --no-audit --no-fund --silent && touch $@; \
	else echo "make install: npm not found; the AsyncAPI parser test will be skipped"; fi

kafka: $(STAMP)
	@if [ -f $(KAFKA_STAMP) ] && [ $(KAFKA_STAMP) -nt deploy/kafka/pom.xml ]; then :; \
	elif command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then \
	  echo "make: fetching the Apache Kafka broker (deploy/kafka/pom.xml)"; \
	  rm -rf $(KAFKA_LIBS) && \
	  mvn --batch-mode --quiet -f deploy/kafka/pom.xml dependency:copy-dependencies \
	    -DincludeScope=runtime -DoutputDirectory=$(abspath $(KAFKA_LIBS)) && \
	  touch $(KAFKA_STAMP); \
	else \
	  echo "make: no JDK or Maven found: NTX will run the fallback broker (Tansu)"; \
	fi

# kcat, the standard librdkafka client, for the standard-client test (DESIGN.md §7);
# CI runs as root on a clean machine, so it installs the Debian package there.
kcat:
	@command -v kcat >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make: installing kcat (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null; \
	  else \
	    echo "make: kcat not found; install the kcat package for the standard-client test"; \
	  fi; }

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

# The image's pinned runtime dependencies (no dev tools, no development stack), with
# hashes; tests/unit/test_packaging.py keeps it in step with pyproject.toml.
lock: $(STAMP)
	$(BIN)/pip install --quiet uv==0.13.9
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 \
	  --generate-hashes --no-header -o deploy/requirements.lock

schemas: install
	$(BIN)/ntx schemas

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis tools/asyncapi/node_modules
