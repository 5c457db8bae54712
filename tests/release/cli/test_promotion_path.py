"""One tag through demo -> staging -> production, driven through the CLI as an operator drives it:
`promote-through --offline --scenario ...` on the offline stacks, each stage judged on a real
Prometheus (on loopback) scraping its synthetic chat-api."""

from __future__ import annotations

from tests.release.cli.conftest import evidence, promote, promotion_project

STAGES = ("demo", "staging", "production")


def events(project, stack: str, tag: str = "v2.0.0") -> list[str]:
    return [e["event"] for e in evidence(project, stack) if e["tag"] == tag]


def test_a_good_tag_goes_through_every_stage_with_its_evidence(tmp_path):
    project = promotion_project(tmp_path / "project")
    approved = project.cli("approve", "production", "--tag", "v2.0.0", "--reason", "release board 2026-48", env={"CAREPATH_OPERATOR": "reviewer"})
    assert approved.code == 0, str(approved)

    result = promote(project, "--tag", "v2.0.0", "--offline", "--scenario", "good", "--report-dir", str(tmp_path / "reports"))

    assert result.code == 0, str(result)
    assert "v2.0.0 is through demo -> staging -> production" in result.out
    assert events(project, "demo") == ["entered", "released", "watch-started", "watched"]
    assert events(project, "staging") == ["entered", "verified", "released", "watch-started", "watched"]
    assert events(project, "production") == ["approved", "entered", "verified", "released", "watch-started", "watched"]
    digests = {e["digest"] for stack in STAGES for e in evidence(project, stack) if e["event"] == "entered"}
    assert len(digests) == 1 and next(iter(digests)).startswith("sha256:"), "one image, the same digest at every stage"
    for stack in STAGES:
        released = next(e for e in evidence(project, stack) if e["event"] == "released")
        assert released["outcome"] in ("promoted", "switched") and released["previous"] == "v1.4.0"
        assert (tmp_path / "reports" / released["report"]).is_file()
        assert next(e for e in evidence(project, stack) if e["event"] == "watched")["outcome"] == "healthy"
    entered = [next(e["time"] for e in evidence(project, stack) if e["event"] == "entered") for stack in STAGES]
    promoted = [next(e["time"] for e in evidence(project, stack) if e["event"] == "watched") for stack in STAGES]
    assert entered[1] >= promoted[0] and entered[2] >= promoted[1], "a stage starts only after the one before has soaked"
    verified = next(e for e in evidence(project, "staging") if e["event"] == "verified")
    assert verified["passed"] and verified["header"] == "x-version: canary", "the suite reached the canary on the tester header"
    # What was applied: every stage serves the tag, nothing left in flight.
    assert project.state("demo").service["tag"] == "v2.0.0"
    assert project.state("staging").service["tag"] == "v2.0.0" and "inFlight" not in project.state("staging").service["rollout"]
    production = project.state("production").service["rollout"]
    assert production["blueGreen"][production["blueGreen"]["active"]]["tag"] == "v2.0.0" and "inFlight" not in production
    page = (tmp_path / "reports" / "promotion-chat-api-v2.0.0.html").read_text()
    assert all(f"release-{stack}-chat-api-v2.0.0.html" in page for stack in STAGES), "the path's page links every stage's report"

    history = project.cli("history", "--service", "chat-api", "--offline")
    assert history.code == 0, str(history)
    assert "demo -> staging -> production" in history.out and "reviewer" in history.out and "release board 2026-48" in history.out

    again = promote(project, "--tag", "v2.0.0", "--offline", "--scenario", "good")
    assert again.code == 0 and again.out.count("is through already") == 3, str(again)


def test_a_worse_model_is_stopped_on_staging_and_production_never_runs_it(tmp_path):
    project = promotion_project(tmp_path / "project")

    result = promote(project, "--tag", "v2.0.0", "--offline", "--scenario", "bad-model")

    assert result.code == 1, str(result)
    assert "staging/chat-api: v2.0.0 rolled back" in result.out and "the path stops here" in result.out
    assert next(e for e in evidence(project, "demo") if e["event"] == "released")["outcome"] == "promoted", "demo has no patients: it cannot see it"
    released = next(e for e in evidence(project, "staging") if e["event"] == "released")
    assert released["outcome"] == "rolled back" and ("triage-success" in released["message"] or "complaints" in released["message"])
    assert events(project, "production") == [], "production never entered"
    staging = project.state("staging")
    assert staging.service["tag"] == "v1.4.0" and "tag" not in staging.service["rollout"].get("canary", {}) and staging.wanted == staging.applied
    production = project.state("production")
    assert production.audit == [] and production.wanted == production.applied and "v2.0.0" not in str(production.service), "nothing ran on production"
    retried = promote(project, "--tag", "v2.0.0", "--offline", "--scenario", "bad-model")
    assert retried.code == 1 and "--retry" in retried.out, "a failed stage is not tried again unless asked"
