# The user's entry points. `make help` lists them. Every target installs what it needs
# itself and is safe to run again.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
CACHE       := .cache
JARS        := $(CACHE)/jars
DURATION    ?= 0

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help
help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ---------------------------------------------------------------- set-up

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.3.1
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,infra]'
	@touch $@

$(JARS)/%/.resolved: app/runtime/maven/%.pom.xml
	@command -v mvn >/dev/null || { echo "error: mvn (Maven) is not on PATH; install it (apt-get install maven)"; exit 1; }
	mvn -q -B -f $< dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(JARS)/$*
	@touch $@

.PHONY: setup
setup: $(VENV)/.installed $(JARS)/kafka-broker/.resolved $(JARS)/spark-kafka/.resolved ## Install the virtualenv and resolve the Kafka and Spark jars

# ---------------------------------------------------------------- the pipeline

.PHONY: demo
demo: setup ## Run the whole pipeline on this machine (make demo DURATION=60 stops after 60 s)
	$(PY) -m app.runtime.demo --demo-duration $(DURATION)s

.PHONY: bench
bench: setup ## Measure sustained events/s, freshness and peak memory (not a test)
	$(PY) -m app.runtime.bench

# ---------------------------------------------------------------- quality

.PHONY: lint
lint: $(VENV)/.installed ## ruff (Python), and yamllint and ansible-lint (Ansible)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: test
test: setup ## Run every test: unit, integration (real Kafka + Spark + chDB), infra, roles
	$(PY) -m pytest tests

.PHONY: lock
lock: ## Re-pin every transitive Python dependency into constraints.txt
	rm -rf $(CACHE)/lock-venv && $(PYTHON_BOOT) -m venv $(CACHE)/lock-venv
	$(CACHE)/lock-venv/bin/pip install --quiet -e '.[dev,infra]'
	$(CACHE)/lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

.PHONY: clean
clean: ## Remove the local runtime's data (.data); keeps downloads
	rm -rf .data

# ---------------------------------------------------------------- AWS appliance (terraform/)

# ---------------------------------------------------------------- Ansible roles (ansible/)
