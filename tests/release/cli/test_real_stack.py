"""The real-stack path of the CLI (no `--offline`): the stack file in a clone of the repository is
the config, every action is committed and pushed to the default branch of `origin` (the ledger),
and the lease is a ref on `origin` that a second machine sees. The Pulumi CLI cannot run here, so
`pulumi.automation`'s stack is replaced by one whose `up` evaluates the clone's stack file with the
offline plan engine and keeps its outputs, as Pulumi keeps a successful update's."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Optional

import pytest
from pulumi import automation as auto

from core.release import ReleaseState
from core.signals import CHAT_API
from offline.harness import ROOT, run_stack
from rehearsal.images import RehearsalImages
from release.__main__ import main
from release.ecr import EcrImages
from release.lease import GitRefLeaseStore, acquire
from release.stackfile import StackFile
from tests.release.conftest import git

pytestmark = pytest.mark.usefixtures("hermetic_git")
LEASE_REF = "refs/carepath/leases/staging/chat-api"


class EvaluatedStack:
    """`auto.Stack` as the driver uses it: `up` evaluates the clone's stack file offline."""

    def __init__(self, project: Path, failing: bool = False, name: str = "staging"):
        self.project, self.failing, self.name = project, failing, name
        self.updates: list[Any] = []
        self.policy_packs: Optional[list[str]] = None

    def up(self, on_output=None, policy_packs=None):
        self.policy_packs = policy_packs
        if self.failing:
            raise auto.CommandError(auto.CommandResult(stdout="", stderr="error: the update failed", code=1))
        self.updates.append(run_stack(self.name, stack_file_path=self.project / f"Pulumi.{self.name}.yaml").outputs)

    def outputs(self):
        outputs = self.updates[-1] if self.updates else run_stack(self.name).outputs
        return {key: auto.OutputValue(value=value, secret=False) for key, value in outputs.items()}


@pytest.fixture
def machines(tmp_path: Path) -> tuple[Path, Path]:
    """`origin` with this project's stack files on main, and two clones of it (two machines)."""
    seed = tmp_path / "seed"
    seed.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml"):
        shutil.copyfile(ROOT / name, seed / name)
    git(seed, "init", "--quiet", "-b", "main")
    git(seed, "add", ".")
    git(seed, "-c", "user.name=seed", "-c", "user.email=seed@example.org", "commit", "--quiet", "-m", "stack files")
    git(tmp_path, "clone", "--quiet", "--bare", "seed", "origin.git")
    clones = []
    for name in ("ci", "laptop"):
        git(tmp_path, "clone", "--quiet", "origin.git", name)
        clones.append(tmp_path / name)
    return clones[0], clones[1]


def ecr_of(region: str | None) -> RehearsalImages:
    """ECR as the CLI opens it, in the stack file's region: the rehearsal's registry here."""
    assert region == "us-east-1", "the stack file's aws:region"
    return RehearsalImages()


def drive(monkeypatch: pytest.MonkeyPatch, project: Path, stack: EvaluatedStack, *args: str) -> int:
    monkeypatch.chdir(project)
    monkeypatch.setattr(auto, "select_stack", lambda stack_name, work_dir: stack)
    monkeypatch.setattr(EcrImages, "in_region", staticmethod(ecr_of))
    return main(list(args))


def test_each_action_is_a_commit_on_the_default_branch_and_the_lease_is_given_back(machines, monkeypatch, capsys):
    ci, laptop = machines
    stack = EvaluatedStack(ci)
    assert drive(monkeypatch, ci, stack, "start", "staging", "--tag", "v2.0.0") == 0
    assert drive(monkeypatch, ci, stack, "advance", "staging") == 0
    log = git(ci, "log", "origin/main", "--format=%s").splitlines()
    assert log[:2] == ["release staging/chat-api: canary v2.0.0 to 5 %", "release staging/chat-api: canary v2.0.0 at 1 %"], log
    body = git(ci, "log", "-1", "origin/main", "--format=%b")
    assert "action advance; run " in body and "; release " in body
    git(laptop, "pull", "--quiet")
    assert "weight: 5" in (laptop / "Pulumi.staging.yaml").read_text(), "another machine sees where the release stands"
    assert git(ci, "ls-remote", "origin", "refs/carepath/leases/*") == "", "no lease ref of the stack or any service is left"
    assert stack.policy_packs is None, "no policy pack in this project: none is passed"
    assert git(ci, "ls-remote", "origin", LEASE_REF) == "", "the lease is given back after each command"
    assert ReleaseState.from_output(stack.outputs()["releases"].value["chat-api"]).track("canary").weight == 5


def test_a_merge_meanwhile_is_rebased_under_the_next_action(machines, monkeypatch):
    ci, laptop = machines
    stack = EvaluatedStack(ci)
    assert drive(monkeypatch, ci, stack, "start", "staging", "--tag", "v2.0.0") == 0
    git(laptop, "pull", "--quiet")
    (laptop / "NOTES.md").write_text("an unrelated change\n")
    git(laptop, "add", "NOTES.md")
    git(laptop, "-c", "user.name=dev", "-c", "user.email=dev@example.org", "commit", "--quiet", "-m", "notes")
    git(laptop, "push", "--quiet", "origin", "HEAD:main")
    assert drive(monkeypatch, ci, stack, "advance", "staging") == 0
    assert git(ci, "log", "origin/main", "--format=%s").splitlines()[:3] == [
        "release staging/chat-api: canary v2.0.0 to 5 %", "notes", "release staging/chat-api: canary v2.0.0 at 1 %",
    ]


def test_a_second_machine_is_refused_while_the_first_holds_the_lease(machines, monkeypatch, capsys):
    ci, laptop = machines
    held = acquire(GitRefLeaseStore(ci, "staging", "chat-api"), "staging", "chat-api", "0123456789ab", "release-bot", "run v2.0.0", ttl=600, now=time.time())
    assert drive(monkeypatch, laptop, EvaluatedStack(laptop), "start", "staging", "--tag", "v3.0.0") == 3
    err = capsys.readouterr().err
    assert "held by release-bot" in err and "run 0123456789ab" in err and "`run v2.0.0`" in err
    assert git(laptop, "log", "origin/main", "--format=%s").splitlines()[0] == "stack files", "nothing was written"
    assert held.run == "0123456789ab"


def test_a_failed_update_leaves_the_decision_on_main_and_status_says_the_cluster_is_behind(machines, monkeypatch, capsys):
    ci, _ = machines
    stack = EvaluatedStack(ci)
    assert drive(monkeypatch, ci, stack, "start", "staging", "--tag", "v2.0.0") == 0
    stack.failing = True
    assert drive(monkeypatch, ci, stack, "advance", "staging") == 1
    assert git(ci, "log", "-1", "origin/main", "--format=%s") == "release staging/chat-api: canary v2.0.0 to 5 %"
    capsys.readouterr()
    monkeypatch.setattr("release.__main__._health", lambda settings, service, url: [])
    assert drive(monkeypatch, ci, stack, "status", "staging") == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "NOT IN STEP" in first and "NO DRIVER IS JUDGING IT" in first


def test_a_clone_without_origin_cannot_hold_a_lease_and_says_so(tmp_path, monkeypatch, capsys):
    project = tmp_path / "alone"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml"):
        shutil.copyfile(ROOT / name, project / name)
    git(project, "init", "--quiet", "-b", "main")
    assert drive(monkeypatch, project, EvaluatedStack(project), "status", "staging") == 1
    err = capsys.readouterr().err
    assert "the release lease cannot be read or written" in err and "Traceback" not in err


def test_an_image_with_a_critical_finding_is_refused_before_a_lease_is_taken_or_anything_written(machines, monkeypatch, capsys):
    ci, _ = machines
    stack = EvaluatedStack(ci)
    monkeypatch.setattr("release.__main__.LeaseKeeper", lambda *args, **kwargs: pytest.fail("a lease was taken"))
    assert drive(monkeypatch, ci, stack, "start", "staging", "--tag", "v2.0.0-critical") == 2
    err = capsys.readouterr().err
    assert "not started: image carepath-chat-api:v2.0.0-critical: 1 finding(s) at or above CRITICAL" in err
    assert "\n  CRITICAL CVE-2024-3094 xz-utils 5.6.1-1 https://nvd.nist.gov/vuln/detail/CVE-2024-3094\n" in err
    assert git(ci, "log", "origin/main", "--format=%s").splitlines() == ["stack files"], "nothing was written"
    assert stack.updates == [], "no update"


def test_a_promotion_of_a_real_stack_pushes_its_evidence_beside_the_ledger_for_every_machine(tmp_path, monkeypatch, capsys, fake_prometheus):
    seed = tmp_path / "seed"
    seed.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.demo.yaml", "Pulumi.staging.yaml", "Pulumi.production.yaml"):
        shutil.copyfile(ROOT / name, seed / name)
    # demo judged on its error ratio alone, at a test's pace, and watched for the two checks a watch needs
    fast = {"intervalSeconds": 1, "maxInconclusiveSeconds": 10, "baselineSeconds": 60, "stepBudgetSeconds": 10, "bakeSeconds": 2,
            "signals": [{"name": s.name, "enabled": False} for s in CHAT_API if s.name != "errors"]}
    StackFile(seed / "Pulumi.demo.yaml").write({"services.chat-api.rollout.analysis": fast, "services.chat-api.promotion.watchSeconds": 0})
    git(seed, "init", "--quiet", "-b", "main")
    git(seed, "add", ".")
    git(seed, "-c", "user.name=seed", "-c", "user.email=seed@example.org", "commit", "--quiet", "-m", "stack files")
    git(tmp_path, "clone", "--quiet", "--bare", "seed", "origin.git")
    for name in ("ci", "laptop"):
        git(tmp_path, "clone", "--quiet", "origin.git", name)
    ci, laptop = tmp_path / "ci", tmp_path / "laptop"
    prometheus = fake_prometheus("healthy")
    stacks = {"demo": EvaluatedStack(ci, name="demo")}
    monkeypatch.chdir(ci)
    monkeypatch.setattr(auto, "select_stack", lambda stack_name, work_dir: stacks[stack_name])
    monkeypatch.setattr(EcrImages, "in_region", staticmethod(ecr_of))

    code = main(["promote-through", "--service", "chat-api", "--tag", "v2.0.0", "--to", "demo", "--prometheus-of", f"demo={prometheus.url}", "--report-dir", str(tmp_path / "reports")])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "v2.0.0 is through demo" in out and len(stacks["demo"].updates) >= 2
    pushed = git(tmp_path / "origin.git", "show", "main:evidence/demo/chat-api.jsonl").splitlines()
    assert [json.loads(line)["event"] for line in pushed] == ["entered", "released", "watch-started", "watched"], "each event pushed to origin's main"
    assert "tag: v2.0.0" in git(tmp_path / "origin.git", "show", "main:Pulumi.demo.yaml"), "the ledger's commits beside it"
    subjects = git(tmp_path / "origin.git", "log", "--format=%s", "main").splitlines()
    assert "evidence demo/chat-api v2.0.0: watched" in subjects[0] and any(s.startswith("release demo/chat-api: ") for s in subjects)
    monkeypatch.chdir(laptop)
    assert main(["history", "--service", "chat-api"]) == 0
    seen = capsys.readouterr().out
    assert "demo -> staging -> production" in seen and "promoted" in seen and "watched" in seen, "another machine reads the record after a fetch"
