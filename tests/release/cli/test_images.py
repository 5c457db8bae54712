"""A release on an image that fails vetting, refused through the CLI: exit 2, the findings
listed, and nothing changed (no lease taken, no stack file write, no ledger commit, nothing
applied, no rehearsal started)."""

from __future__ import annotations

import pytest

from release.stackfile import StackFile
from tests.release.cli.conftest import ROOT, tracks


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("start", "staging", "--tag", "v2.0.0-critical"), "\n  CRITICAL CVE-2024-3094 xz-utils 5.6.1-1 https://nvd.nist.gov/vuln/detail/CVE-2024-3094\n"),
        (("start", "production", "--tag", "v2.0.0-unpushed"), "image carepath-chat-api:v2.0.0-unpushed is not in its ECR repository"),
        (("run", "staging", "--tag", "v2.0.0-critical", "--scenario", "good"), "1 finding(s) at or above CRITICAL"),
        (("run", "demo", "--tag", "v2.0.0-scanning"), "its scan is IN_PROGRESS"),
    ],
    ids=["start critical", "start unpushed", "rehearsal critical", "run scanning"],
)
def test_a_refused_image_exits_2_listing_why_and_changes_nothing(project, args, says):
    stack = args[1]
    result = project.cli(*args)
    assert result.code == 2, str(result)
    assert "Traceback" not in result.err, str(result)
    assert result.err.startswith(f"python -m release {args[0]}: stack {stack}, service chat-api: not started: "), result.err
    assert says in result.err, result.err
    assert "rehearsal:" not in result.out, "refused before a synthetic service or Prometheus is started"
    workspace = project.workspace(stack)
    assert not (workspace / "leases").exists() or not any((workspace / "leases").iterdir()), "no lease taken"
    state = project.state(stack)
    assert state.config == StackFile(ROOT / f"Pulumi.{stack}.yaml").config(), "no write"
    assert state.wanted == state.applied and args[3] not in {tag for tag, _ in tracks(state.applied).values()}, "nothing applied"
    assert state.audit == [], "no command ran"
    assert project.git(stack, "rev-list", "--count", "HEAD").strip() == "1", "no ledger commit"


def test_a_clean_image_starts_and_its_vetting_is_audited(project):
    result = project.cli("start", "staging", "--tag", "v2.0.0")
    assert result.code == 0, str(result)
    state = project.state("staging")
    assert state.service["rollout"]["canary"]["tag"] == "v2.0.0"
    assert state.events()[:2] == [("vet", "passed"), ("start", "started")]
