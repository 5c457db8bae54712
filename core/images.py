"""Image vetting, as a pure rule: may a release start on this image?

An `ImageReport` is what the registry says of one tag of one repository: whether the tag is
there, the state of its vulnerability scan, and the scan's findings. `vet` answers whether a
release may start on it, given the service's threshold (`imageScan.blockAt`):

- a tag that is not in the repository blocks;
- a scan that has not answered blocks: in progress or pending, failed, unsupported, never run,
  or any state other than a finished one (`COMPLETE` for basic scanning, `ACTIVE` for
  enhanced scanning, whose findings are then current). A release never starts on an image
  that could not be vetted;
- a finding at or above the threshold blocks, in the order INFORMATIONAL < LOW < MEDIUM <
  HIGH < CRITICAL. A finding the scanner has not rated (`UNDEFINED` from basic scanning,
  `UNTRIAGED` from Amazon Inspector) ranks with INFORMATIONAL: it is listed, and blocks only
  a threshold of INFORMATIONAL (block on any finding). A severity the rule does not know at
  all ranks with CRITICAL: what cannot be placed is not waved through.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal, Optional

Severity = Literal["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
SEVERITIES: tuple[str, ...] = typing.get_args(Severity)  # least severe first
UNRATED = frozenset({"UNDEFINED", "UNTRIAGED"})
FINISHED_SCANS = frozenset({"COMPLETE", "ACTIVE"})  # basic scanning, enhanced scanning


def rank(severity: str) -> int:
    """A severity's place in `SEVERITIES` (unrated: INFORMATIONAL's; unknown: CRITICAL's)."""
    severity = severity.upper()
    if severity in UNRATED:
        return 0
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1


@dataclass(frozen=True)
class Finding:
    severity: str
    name: str  # the CVE, or the scanner's title
    package: Optional[str] = None
    version: Optional[str] = None
    uri: Optional[str] = None

    def describe(self) -> str:
        package = " ".join(part for part in (self.package, self.version) if part)
        return " ".join(part for part in (self.severity, self.name, package, self.uri) if part)


@dataclass(frozen=True)
class ImageReport:
    """One tag of one repository as the registry sees it. `scan_status` None: never scanned."""

    repository: str
    tag: str
    pushed: bool
    digest: Optional[str] = None
    scan_status: Optional[str] = None
    scan_description: Optional[str] = None
    findings: tuple[Finding, ...] = ()

    @property
    def image(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class Vetting:
    """`vet`'s answer: `reason` empty when the release may start; `blocking` the findings at or
    above the threshold, most severe first."""

    reason: str
    blocking: tuple[Finding, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.reason


def vet(report: ImageReport, block_at: str) -> Vetting:
    """Whether a release may start on the reported image, findings at or above `block_at` blocking."""
    if not report.pushed:
        return Vetting(f"image {report.image} is not in its ECR repository: push it first (or check the tag)")
    if report.scan_status not in FINISHED_SCANS:
        status = report.scan_status or "no scan"
        said = f" ({report.scan_description})" if report.scan_description else ""
        return Vetting(f"image {report.image} could not be vetted: its scan is {status}{said}; a release starts only on an image whose scan has finished")
    threshold = rank(block_at)
    blocking = tuple(sorted((f for f in report.findings if rank(f.severity) >= threshold), key=lambda f: (-rank(f.severity), f.name)))
    if not blocking:
        return Vetting("")
    return Vetting(f"image {report.image}: {len(blocking)} finding(s) at or above {block_at}; fix them and push a new tag", blocking)
