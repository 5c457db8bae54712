"""The gates of a stage, through the CLI: a freeze window waits (or stops with exit 4, saying until
when) and an override with a reason goes through, recorded; an approval is waited for, never
given by the one who promotes, and lets the waiting promotion in once given."""

from __future__ import annotations

import datetime
import subprocess

from tests.release.cli.conftest import REHEARSAL_ENV, evidence, promote, promotion_project, wait_until


def window(minutes_from_now: float, minutes_long: float) -> dict[str, str]:
    """A dated freeze window in UTC, `minutes_from_now` from now (negative: open already)."""
    start = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes_from_now)
    end = start + datetime.timedelta(minutes=minutes_long)
    return {"name": "incident review", "start": f"{start:%Y-%m-%d %H:%M}", "end": f"{end:%Y-%m-%d %H:%M}", "timeZone": "UTC"}


def test_a_frozen_stage_waits_and_an_override_with_a_reason_goes_through_recorded(tmp_path):
    project = promotion_project(tmp_path / "project", {"demo": {"services.chat-api.promotion.freeze": [window(-60, 120)]}})

    waiting = promote(project, "--tag", "v2.0.0", "--offline", "--scenario", "good", "--to", "demo", "--max-wait", "5")

    assert waiting.code == 4, str(waiting)
    assert "demo/chat-api: waiting: frozen: incident review" in waiting.out and "run promote-through again later" in waiting.out
    assert [e["event"] for e in evidence(project, "demo")] == ["stopped"] and evidence(project, "demo")[0]["gate"] == "freeze"
    assert project.state("demo").audit == [], "nothing released while frozen"

    refused = promote(project, "--tag", "v2.0.0", "--offline", "--scenario", "good", "--to", "demo", "--override", "freeze")
    assert refused.code == 2 and "--override needs --reason" in refused.err, str(refused)

    hotfix = promote(project, "--tag", "v2.0.0", "--offline", "--scenario", "good", "--to", "demo", "--override", "freeze", "--reason", "hotfix INC-1234")

    assert hotfix.code == 0, str(hotfix)
    assert "override of freeze: hotfix INC-1234 (recorded)" in hotfix.out
    entered = next(e for e in evidence(project, "demo") if e["event"] == "entered")
    assert entered["overrides"] == [{"gate": "freeze", "reason": "hotfix INC-1234"}] and entered["operator"] == "tester"
    assert project.state("demo").service["tag"] == "v2.0.0"
    history = project.cli("history", "--service", "chat-api", "--offline")
    assert "hotfix INC-1234" in history.out, str(history)


def test_a_freeze_that_ends_within_the_wait_is_waited_out(tmp_path):
    # Windows have minutes: this one ends 1 to 2 minutes from now, after the rehearsal's warm-up.
    ends = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0) + datetime.timedelta(minutes=2)
    freeze = {"name": "change window", "start": f"{ends - datetime.timedelta(hours=1):%Y-%m-%d %H:%M}", "end": f"{ends:%Y-%m-%d %H:%M}", "timeZone": "UTC"}
    project = promotion_project(tmp_path / "project", {"demo": {"services.chat-api.promotion.freeze": [freeze]}})

    result = promote(project, "--tag", "v2.0.0", "--offline", "--scenario", "good", "--to", "demo", "--max-wait", "240")

    assert result.code == 0, str(result)
    assert "demo/chat-api: waiting: frozen: change window" in result.out
    entered = next(e for e in evidence(project, "demo") if e["event"] == "entered")
    assert entered["time"] >= f"{ends:%Y-%m-%dT%H:%M:%SZ}" and entered["overrides"] == [], "entered when the window closed, no override"


def test_a_stage_needing_an_approval_waits_for_one_from_someone_else(tmp_path):
    project = promotion_project(tmp_path / "project", {"demo": {"services.chat-api.promotion.approval": {"required": True}}})
    process = project.spawn("promote-through", "--service", "chat-api", "--tag", "v2.0.0", "--scenario", "good", "--to", "demo", "--max-wait", "300")
    try:
        wait_until(lambda: any(e["event"] == "requested" for e in evidence(project, "demo")), 240, "the promotion asks for an approval")
        assert project.state("demo").audit == [], "nothing released before the approval"

        own = project.cli("approve", "demo", "--tag", "v2.0.0", "--reason", "looks fine")
        assert own.code == 2 and "four eyes" in own.err, str(own)

        given = project.cli("approve", "demo", "--tag", "v2.0.0", "--reason", "checked the staging dashboards", env={"CAREPATH_OPERATOR": "reviewer"})
        assert given.code == 0, str(given)
        out, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, f"exit {process.returncode}\n{out}\n{err}"
    assert "demo/chat-api: waiting: an approval" in out
    kinds = [e["event"] for e in evidence(project, "demo")]
    assert kinds.index("requested") < kinds.index("approved") < kinds.index("entered")
    approval = next(e for e in evidence(project, "demo") if e["event"] == "approved")
    assert approval["by"] == "reviewer" and approval["reason"] == "checked the staging dashboards"
    assert project.state("demo").service["tag"] == "v2.0.0"


def test_an_approval_for_a_stage_that_needs_none_or_outside_the_path_is_refused(tmp_path):
    project = promotion_project(tmp_path / "project")
    needless = project.cli("approve", "demo", "--tag", "v2.0.0", "--reason", "x", env={"CAREPATH_OPERATOR": "reviewer"})
    assert needless.code == 2 and "needs no approval" in needless.err, str(needless)
    outside = project.cli("approve", "fastcanary", "--tag", "v2.0.0", "--reason", "x", env={"CAREPATH_OPERATOR": "reviewer"})
    assert outside.code == 2 and "no stage of chat-api's promotion path (demo -> staging -> production)" in outside.err, str(outside)
    path = subprocess.run(project.argv(("path", "--service", "chat-api"), offline=False), cwd=project.path, env=project.env(**REHEARSAL_ENV), capture_output=True, text=True, check=False)
    assert path.stdout.split() == ["demo", "staging", "production"], path.stderr
