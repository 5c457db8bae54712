"""The ECR adapter against botocore's Stubber: real request and response validation against
ECR's service model, no network."""

from __future__ import annotations

import datetime
from typing import Any, Iterator

import botocore.session
import pytest
from botocore.stub import Stubber

from core.images import Finding
from offline.harness import ROOT
from release.ecr import EcrImages, region_of
from release.ports import ImagesError

REPOSITORY, TAG = "carepath-chat-api", "v2.0.0"
DIGEST = "sha256:" + "4f" * 32
WHEN = datetime.datetime(2026, 11, 28, 9, 0, tzinfo=datetime.timezone.utc)
BY_TAG = {"repositoryName": REPOSITORY, "imageIds": [{"imageTag": TAG}]}
BY_DIGEST = {"repositoryName": REPOSITORY, "imageId": {"imageDigest": DIGEST}}


@pytest.fixture
def ecr() -> Iterator[tuple[Any, Stubber]]:
    client = botocore.session.get_session().create_client(
        "ecr", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing",  # noqa: S106 (a stubbed client)
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def pushed(status: str) -> dict[str, Any]:
    detail = {"registryId": "123456789012", "repositoryName": REPOSITORY, "imageDigest": DIGEST, "imageTags": [TAG], "imagePushedAt": WHEN}
    return {"imageDetails": [{**detail, "imageScanStatus": {"status": status, "description": "The scan was completed successfully."}}]}


def scan_page(status: str, findings: dict[str, Any], next_token: str | None = None) -> dict[str, Any]:
    page = {
        "registryId": "123456789012", "repositoryName": REPOSITORY, "imageId": {"imageDigest": DIGEST, "imageTag": TAG},
        "imageScanStatus": {"status": status, "description": "The scan was completed successfully."},
        "imageScanFindings": {"imageScanCompletedAt": WHEN, **findings},
    }
    return {**page, "nextToken": next_token} if next_token else page


def basic(name: str, severity: str, package: str, version: str) -> dict[str, Any]:
    return {
        "name": name, "severity": severity, "uri": f"https://nvd.nist.gov/vuln/detail/{name}",
        "attributes": [{"key": "package_name", "value": package}, {"key": "package_version", "value": version}, {"key": "CVSS3_SCORE", "value": "10"}],
    }


def test_basic_scanning_findings_are_read_from_every_page(ecr):
    client, stubber = ecr
    stubber.add_response("describe_images", pushed("COMPLETE"), BY_TAG)
    stubber.add_response("describe_image_scan_findings", scan_page("COMPLETE", {"findings": [basic("CVE-2024-3094", "CRITICAL", "xz-utils", "5.6.1-1")]}, "page-2"), BY_DIGEST)
    stubber.add_response("describe_image_scan_findings", scan_page("COMPLETE", {"findings": [basic("CVE-2022-3219", "LOW", "gnupg", "2.2.40")]}), {**BY_DIGEST, "nextToken": "page-2"})
    report = EcrImages(lambda: client).describe(REPOSITORY, TAG)
    assert (report.pushed, report.digest, report.scan_status) == (True, DIGEST, "COMPLETE")
    assert report.findings == (
        Finding("CRITICAL", "CVE-2024-3094", "xz-utils", "5.6.1-1", "https://nvd.nist.gov/vuln/detail/CVE-2024-3094"),
        Finding("LOW", "CVE-2022-3219", "gnupg", "2.2.40", "https://nvd.nist.gov/vuln/detail/CVE-2022-3219"),
    )


def test_enhanced_scanning_findings_give_one_finding_per_vulnerable_package(ecr):
    client, stubber = ecr
    enhanced = {
        "awsAccountId": "123456789012", "findingArn": "arn:aws:inspector2:us-east-1:123456789012:finding/abc", "severity": "HIGH",
        "title": "CVE-2023-4863 - libwebp7, libwebpdemux2", "type": "PACKAGE_VULNERABILITY", "status": "ACTIVE",
        "packageVulnerabilityDetails": {
            "vulnerabilityId": "CVE-2023-4863", "sourceUrl": "https://security-tracker.debian.org/tracker/CVE-2023-4863", "source": "DEBIAN_CVE",
            "vulnerablePackages": [{"name": "libwebp7", "version": "1.2.4"}, {"name": "libwebpdemux2", "version": "1.2.4"}],
        },
    }
    untriaged = {"severity": "UNTRIAGED", "title": "CVE-2026-0001 - zlib1g", "packageVulnerabilityDetails": {"vulnerabilityId": "CVE-2026-0001", "referenceUrls": ["https://example.org/CVE-2026-0001"]}}
    stubber.add_response("describe_images", pushed("ACTIVE"), BY_TAG)
    stubber.add_response("describe_image_scan_findings", scan_page("ACTIVE", {"enhancedFindings": [enhanced, untriaged]}), BY_DIGEST)
    report = EcrImages(lambda: client).describe(REPOSITORY, TAG)
    assert report.scan_status == "ACTIVE"
    url = "https://security-tracker.debian.org/tracker/CVE-2023-4863"
    assert report.findings == (
        Finding("HIGH", "CVE-2023-4863", "libwebp7", "1.2.4", url),
        Finding("HIGH", "CVE-2023-4863", "libwebpdemux2", "1.2.4", url),
        Finding("UNTRIAGED", "CVE-2026-0001", None, None, "https://example.org/CVE-2026-0001"),
    )


@pytest.mark.parametrize("code", ["ImageNotFoundException", "RepositoryNotFoundException"])
def test_a_tag_or_repository_ecr_does_not_have_is_not_pushed(ecr, code):
    client, stubber = ecr
    stubber.add_client_error("describe_images", code, "The image with imageId {imageTag:'v2.0.0'} does not exist", 400, expected_params=BY_TAG)
    report = EcrImages(lambda: client).describe(REPOSITORY, TAG)
    assert not report.pushed and report.findings == ()


def test_a_scan_in_progress_is_reported_with_its_state(ecr):
    client, stubber = ecr
    stubber.add_response("describe_images", pushed("IN_PROGRESS"), BY_TAG)
    stubber.add_response("describe_image_scan_findings", {"imageScanStatus": {"status": "IN_PROGRESS", "description": "scanning"}}, BY_DIGEST)
    report = EcrImages(lambda: client).describe(REPOSITORY, TAG)
    assert (report.pushed, report.scan_status, report.scan_description, report.findings) == (True, "IN_PROGRESS", "scanning", ())


def test_an_image_never_scanned_has_no_scan_state(ecr):
    client, stubber = ecr
    stubber.add_response("describe_images", {"imageDetails": [{"repositoryName": REPOSITORY, "imageDigest": DIGEST, "imageTags": [TAG]}]}, BY_TAG)
    stubber.add_client_error("describe_image_scan_findings", "ScanNotFoundException", "no scan", 400, expected_params=BY_DIGEST)
    report = EcrImages(lambda: client).describe(REPOSITORY, TAG)
    assert report.pushed and report.scan_status is None


def test_ecr_refusing_to_answer_is_an_images_error(ecr):
    client, stubber = ecr
    stubber.add_client_error("describe_images", "AccessDeniedException", "not authorized to perform ecr:DescribeImages", 403, expected_params=BY_TAG)
    with pytest.raises(ImagesError, match="ecr:DescribeImages"):
        EcrImages(lambda: client).describe(REPOSITORY, TAG)


def test_the_client_is_made_when_first_needed_and_a_missing_region_is_an_images_error(monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    images = EcrImages.in_region(None)  # nothing asked yet: an abort never needs AWS
    with pytest.raises(ImagesError, match="ECR cannot be asked"):
        images.describe(REPOSITORY, TAG)


def test_the_region_is_the_stack_files():
    assert region_of(ROOT / "Pulumi.staging.yaml") == "us-east-1"
