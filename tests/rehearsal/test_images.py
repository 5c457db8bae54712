"""The rehearsal's registry: every tag pushed and clean, but for the tags that rehearse a refusal."""

from __future__ import annotations

from core.images import vet
from rehearsal.images import OUTCOMES, RehearsalImages


def test_an_ordinary_tag_is_pushed_with_a_finished_clean_scan_and_a_stable_digest():
    images = RehearsalImages()
    report = images.describe("carepath-chat-api", "v2.0.0")
    assert (report.pushed, report.scan_status, report.findings) == (True, "COMPLETE", ())
    assert report.digest == images.describe("carepath-chat-api", "v2.0.0").digest != images.describe("carepath-chat-api", "v2.0.1").digest
    assert vet(report, "INFORMATIONAL").passed


def test_each_outcome_tag_is_refused_for_its_own_reason():
    reasons = {outcome: vet(RehearsalImages().describe("carepath-chat-api", f"v2.0.0-{outcome}"), "CRITICAL").reason for outcome in OUTCOMES}
    assert "1 finding(s) at or above CRITICAL" in reasons["critical"]
    assert "its scan is IN_PROGRESS" in reasons["scanning"]
    assert "is not in its ECR repository" in reasons["unpushed"]
