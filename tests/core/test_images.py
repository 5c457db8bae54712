"""The image vetting rule: what blocks a release from starting, over every severity and scan state."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.images import FINISHED_SCANS, SEVERITIES, Finding, ImageReport, rank, vet

SCAN_STATES = ("IN_PROGRESS", "COMPLETE", "FAILED", "UNSUPPORTED_IMAGE", "ACTIVE", "PENDING", "SCAN_ELIGIBILITY_EXPIRED", "FINDINGS_UNAVAILABLE", "LIMIT_EXCEEDED", None)
RATED = st.sampled_from(SEVERITIES)
ANY_SEVERITY = st.one_of(RATED, st.sampled_from(("UNDEFINED", "UNTRIAGED", "low", "SEVERE")))
FINDINGS = st.lists(st.builds(Finding, ANY_SEVERITY, st.from_regex(r"CVE-20[0-9]{2}-[0-9]{4,6}", fullmatch=True)), max_size=8).map(tuple)


def scanned(findings: tuple[Finding, ...], status: str = "COMPLETE") -> ImageReport:
    return ImageReport("carepath-chat-api", "v2.0.0", True, "sha256:" + "a" * 64, status, findings=findings)


def test_the_order_is_informational_to_critical():
    assert [rank(s) for s in ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")] == [0, 1, 2, 3, 4]


def test_unrated_findings_rank_lowest_and_unknown_severities_highest():
    assert rank("UNDEFINED") == rank("UNTRIAGED") == rank("INFORMATIONAL")
    assert rank("SEVERE") == rank("CRITICAL"), "a severity the rule cannot place is not waved through"


@given(FINDINGS, RATED)
def test_a_finished_scan_blocks_exactly_on_findings_at_or_above_the_threshold(findings, block_at):
    vetting = vet(scanned(findings), block_at)
    expected = [f for f in findings if rank(f.severity) >= SEVERITIES.index(block_at)]
    assert sorted(vetting.blocking, key=repr) == sorted(expected, key=repr)
    assert vetting.passed == (not expected)
    assert [rank(f.severity) for f in vetting.blocking] == sorted((rank(f.severity) for f in vetting.blocking), reverse=True), "most severe first"
    if expected:
        assert f"at or above {block_at}" in vetting.reason and f"{len(expected)} finding(s)" in vetting.reason


@given(FINDINGS, RATED, RATED)
def test_a_stricter_threshold_never_passes_what_a_looser_one_blocks(findings, one, other):
    stricter, looser = sorted((one, other), key=SEVERITIES.index)
    if not vet(scanned(findings), looser).passed:
        assert not vet(scanned(findings), stricter).passed


@given(FINDINGS, RATED, st.sampled_from([s for s in SCAN_STATES if s not in FINISHED_SCANS]))
def test_an_unfinished_scan_blocks_whatever_it_found(findings, block_at, status):
    vetting = vet(scanned(findings, status), block_at)
    assert not vetting.passed and vetting.blocking == ()
    assert f"its scan is {status or 'no scan'}" in vetting.reason and "could not be vetted" in vetting.reason


@given(RATED)
def test_a_tag_not_in_the_repository_blocks(block_at):
    vetting = vet(ImageReport("carepath-chat-api", "v9.9.9", pushed=False), block_at)
    assert not vetting.passed
    assert vetting.reason.startswith("image carepath-chat-api:v9.9.9 is not in its ECR repository")


def test_a_clean_scan_passes_and_a_critical_one_names_each_finding():
    assert vet(scanned(()), "CRITICAL").passed
    assert vet(scanned((), "ACTIVE"), "INFORMATIONAL").passed, "enhanced scanning's finished state"
    finding = Finding("CRITICAL", "CVE-2024-3094", "xz-utils", "5.6.1-1", "https://nvd.nist.gov/vuln/detail/CVE-2024-3094")
    assert finding.describe() == "CRITICAL CVE-2024-3094 xz-utils 5.6.1-1 https://nvd.nist.gov/vuln/detail/CVE-2024-3094"
    assert Finding("HIGH", "CVE-2023-1").describe() == "HIGH CVE-2023-1", "package, version and URI only when known"
    assert vet(scanned((finding,)), "CRITICAL").blocking == (finding,)
