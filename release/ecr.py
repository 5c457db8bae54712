"""The registry port on Amazon ECR (boto3): what ECR says of one tag of a service's repository.

`describe_images` by tag says whether the tag is there (`ImageNotFoundException`, or no
repository at all: it is not); `describe_image_scan_findings`, every page of it, gives the
scan's state and its findings, in either of ECR's shapes: basic scanning (`findings`, the
package in the finding's attributes) and enhanced scanning (`enhancedFindings`, Amazon
Inspector: one finding per vulnerable package). Credentials and the endpoint are boto3's
(environment, profile, role); the region is the stack's `aws:region`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from core.images import Finding, ImageReport
from offline.stack_yaml import stack_config
from release.ports import ImagesError

NOT_PUSHED = ("ImageNotFoundException", "RepositoryNotFoundException")


def region_of(stack_file: Path) -> Optional[str]:
    """The stack file's `aws:region` (None: unset, and boto3 finds one itself)."""
    region = stack_config(stack_file).get("aws:region")
    return region if isinstance(region, str) else None


class EcrImages:
    """`connect` makes the ECR client when it is first needed, so a command that vets nothing
    (an abort) never depends on AWS credentials or a region."""

    def __init__(self, connect: Callable[[], Any]):
        self._connect = connect
        self._client: Any = None

    @classmethod
    def in_region(cls, region: Optional[str]) -> EcrImages:
        """ECR of `region` (None: boto3's own default, `AWS_REGION` or the profile's)."""
        return cls(lambda: boto3.client("ecr", region_name=region))

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = self._connect()
            except BotoCoreError as error:
                raise ImagesError(f"ECR cannot be asked: {error}") from error
        return self._client

    def describe(self, repository: str, tag: str) -> ImageReport:
        try:
            details = self.client.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
        except ClientError as error:
            if _code(error) in NOT_PUSHED:
                return ImageReport(repository, tag, pushed=False)
            raise ImagesError(f"ECR describe_images {repository}:{tag}: {error}") from error
        except BotoCoreError as error:
            raise ImagesError(f"ECR describe_images {repository}:{tag}: {error}") from error
        if not details:
            return ImageReport(repository, tag, pushed=False)
        digest = details[0]["imageDigest"]
        try:
            pages = list(self.client.get_paginator("describe_image_scan_findings").paginate(repositoryName=repository, imageId={"imageDigest": digest}))
        except ClientError as error:
            if _code(error) == "ScanNotFoundException":
                return ImageReport(repository, tag, pushed=True, digest=digest)
            raise ImagesError(f"ECR describe_image_scan_findings {repository}@{digest}: {error}") from error
        except BotoCoreError as error:
            raise ImagesError(f"ECR describe_image_scan_findings {repository}@{digest}: {error}") from error
        status = pages[0].get("imageScanStatus", {}) if pages else {}
        findings = tuple(finding for page in pages for finding in _findings(page.get("imageScanFindings", {})))
        return ImageReport(repository, tag, True, digest, status.get("status"), status.get("description"), findings)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _findings(scan: Mapping[str, Any]) -> Iterator[Finding]:
    for basic in scan.get("findings", []):
        attributes = {a["key"]: a.get("value") for a in basic.get("attributes", [])}
        yield Finding(basic.get("severity", "UNDEFINED"), basic.get("name", "(unnamed)"), attributes.get("package_name"), attributes.get("package_version"), basic.get("uri"))
    for enhanced in scan.get("enhancedFindings", []):
        details = enhanced.get("packageVulnerabilityDetails", {})
        name = details.get("vulnerabilityId") or enhanced.get("title") or "(unnamed)"
        uri = details.get("sourceUrl") or next(iter(details.get("referenceUrls", [])), None)
        severity = enhanced.get("severity", "UNTRIAGED")
        packages = details.get("vulnerablePackages") or [{}]
        for package in packages:
            yield Finding(severity, name, package.get("name"), package.get("version"), uri)
