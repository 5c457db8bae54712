"""What keeps a worse version from patients around a stage's release, through the CLI: a failing
verification suite stops the stage before any patient traffic, and a regression inside the watch
window after a promotion rolls the stage back by itself and stops the path."""

from __future__ import annotations

from tests.release.cli.conftest import evidence, promote, promotion_project


def test_a_failing_verification_suite_stops_the_stage_before_any_patient_traffic(tmp_path):
    project = promotion_project(tmp_path / "project")

    # A hotfix straight to staging: the stage before is skipped by a recorded override.
    result = promote(
        project, "--tag", "v2.0.0", "--offline", "--scenario", "broken", "--from", "staging", "--to", "staging",
        "--override", "previous-stage", "--reason", "hotfix straight to staging",
    )

    assert result.code == 1, str(result)
    assert "the verification suite failed before any patient traffic" in result.out
    verified = next(e for e in evidence(project, "staging") if e["event"] == "verified")
    assert not verified["passed"] and verified["exit_code"] not in (0, None) and "failed" in verified["output"]
    assert verified["header"] == "x-version: canary"
    state = project.state("staging")
    weights = [entry["changes"].get("services.chat-api.rollout.canary.weight") for entry in state.audit if entry.get("event") == "started" and "changes" in entry]
    assert [w for w in weights if w not in (None, 0)] == [], "the canary never had a patient share"
    assert [a for a, e in state.events() if e == "started"][:2] == ["start", "abort"], "started for testers, aborted after the suite"
    assert state.service["tag"] == "v1.4.0" and "tag" not in state.service["rollout"].get("canary", {}) and state.wanted == state.applied
    entered = next(e for e in evidence(project, "staging") if e["event"] == "entered")
    assert entered["overrides"] == [{"gate": "previous-stage", "reason": "hotfix straight to staging"}]
    assert not any(e["event"] == "released" for e in evidence(project, "staging"))


def test_a_regression_inside_the_watch_window_rolls_the_stage_back_by_itself(tmp_path):
    project = promotion_project(tmp_path / "project")

    result = promote(project, "--tag", "v2.0.0", "--offline", "--scenario", "regresses-after-promotion")

    assert result.code == 1, str(result)
    assert "demo/chat-api: the watch after promotion ended rolled back" in result.out and "the path stops here" in result.out
    kinds = [e["event"] for e in evidence(project, "demo")]
    assert kinds == ["entered", "released", "watch-started", "watched"]
    assert next(e for e in evidence(project, "demo") if e["event"] == "released")["outcome"] == "promoted", "it passed its release"
    watched = next(e for e in evidence(project, "demo") if e["event"] == "watched")
    assert watched["outcome"] == "rolled back" and any("errors" in reason for reason in watched["reasons"])
    demo = project.state("demo")
    assert demo.service["tag"] == "v1.4.0" and "inFlight" not in demo.service["rollout"] and demo.wanted == demo.applied, "back on the replaced version"
    assert ("abort", "applied") in demo.events(), "the watch's rollback is the driver's abort of the release it kept"
    assert evidence(project, "staging") == [], "the path stopped at demo"
