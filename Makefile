# Two environments, as in production: the Pulumi program's (.venv) and the workloads' (.venv-workloads).
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
WVENV := .venv-workloads
TVENV := .venv-tools
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: help venv test lint typecheck typecheck-workloads check-promtool test-infra test-workloads scan rules up down bench clean

help:
	@echo "make up     - the whole fleet on this machine (the local stack)"
	@echo "make test   - ruff, both type checks, then every test (infrastructure under mocks, workloads for real)"
	@echo "make bench  - the benchmarks; each writes bench/results/<name>.json"

$(VENV)/.installed: requirements.txt requirements.lock
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -r requirements.txt -c requirements.lock
	touch $@

$(WVENV)/.installed: workloads/requirements-dev.txt workloads/requirements.lock
	$(PY) -m venv $(WVENV)
	$(WVENV)/bin/pip install $(PIP_FLAGS) -r workloads/requirements-dev.txt -c workloads/requirements.lock
	touch $@

# checkov's pins conflict with the Pulumi program's: the scanners get their own environment.
$(TVENV)/.installed: tools/requirements-checkov.txt tools/requirements-checkov.lock
	$(PY) -m venv $(TVENV)
	$(TVENV)/bin/pip install $(PIP_FLAGS) -r tools/requirements-checkov.txt -c tools/requirements-checkov.lock
	touch $@

venv: $(VENV)/.installed $(WVENV)/.installed

# ruff's rules and formatter settings live in pyproject.toml.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check

# The Pulumi program, against .venv (pyproject.toml).
typecheck: $(VENV)/.installed
	$(VENV)/bin/basedpyright

# The workloads and the local stack, against .venv-workloads (pyrightconfig.workloads.json).
typecheck-workloads: $(VENV)/.installed $(WVENV)/.installed
	$(VENV)/bin/basedpyright -p pyrightconfig.workloads.json

# The rule tests (tests/meridian/monitoring) need promtool; without it they skip, and this says so.
check-promtool:
	@command -v promtool >/dev/null || echo "make test: promtool not found, the Prometheus rule and dashboard tests are SKIPPED; install it: apt-get install prometheus (Debian/Ubuntu) or brew install prometheus (macOS)"

# monitoring/ (alert rules, their promtool tests, the runbook, dashboards) from meridian/monitoring/.
rules: $(VENV)/.installed
	$(VENV)/bin/python -m meridian monitoring generate

# The Pulumi side: the program under mocks, the policy pack, the operator CLI.
test-infra: $(VENV)/.installed
	$(VENV)/bin/python -m pytest tests/test_pulumi_yaml.py tests/components tests/policy tests/meridian --ignore=tests/meridian/local --ignore=tests/meridian/data

# The workloads for real (Flower on loopback, real servers, real torch), the local stack, and
# `meridian data` against S3 and GCS servers on loopback.
test-workloads: $(WVENV)/.installed
	$(WVENV)/bin/python -m pytest tests/workloads tests/meridian/local tests/meridian/data tests/e2e

# checkov over the rendered manifests, Dockerfiles and workflows; workflow JSON schema.
scan: $(VENV)/.installed $(TVENV)/.installed
	$(VENV)/bin/python -m meridian scan

# Cheapest first, so a lint or type error fails in seconds, not after the slow suites.
test: lint typecheck typecheck-workloads check-promtool test-infra scan test-workloads

# The local stack runs the workloads, so it runs in their environment.
up: venv
	$(WVENV)/bin/python -m meridian local up $(ARGS)

down:
	$(WVENV)/bin/python -m meridian local down

bench: venv
	$(VENV)/bin/python bench/preview.py
	$(WVENV)/bin/python bench/federated.py
	$(WVENV)/bin/python bench/serving.py

clean:
	rm -rf $(VENV) $(WVENV) $(TVENV) .pytest_cache out
