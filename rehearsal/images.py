"""The offline registry of rehearsals: the `Images` port without ECR.

Every tag is pushed and its scan finished clean, except a tag whose last `-` part names what
its rehearsal shows (`OUTCOMES`): `v2.0.0-critical` has a CRITICAL finding (and a HIGH and a
LOW one, which block only at a lower `imageScan.blockAt`), `v2.0.0-scanning` a scan still in
progress, `v2.0.0-unpushed` was never pushed. So a refused release can be rehearsed as any
other: `make start STACK=staging TAG=v2.0.0-critical OFFLINE=1`.
"""

from __future__ import annotations

import hashlib

from core.images import Finding, ImageReport

VULNERABLE = (
    Finding("CRITICAL", "CVE-2024-3094", "xz-utils", "5.6.1-1", "https://nvd.nist.gov/vuln/detail/CVE-2024-3094"),
    Finding("HIGH", "CVE-2023-4863", "libwebp7", "1.2.4-0.2", "https://nvd.nist.gov/vuln/detail/CVE-2023-4863"),
    Finding("LOW", "CVE-2022-3219", "gnupg", "2.2.40-1.1", "https://nvd.nist.gov/vuln/detail/CVE-2022-3219"),
)
OUTCOMES = ("critical", "scanning", "unpushed")


class RehearsalImages:
    def describe(self, repository: str, tag: str) -> ImageReport:
        outcome = tag.rpartition("-")[2] if "-" in tag else ""
        if outcome == "unpushed":
            return ImageReport(repository, tag, pushed=False)
        digest = "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()
        if outcome == "scanning":
            return ImageReport(repository, tag, True, digest, "IN_PROGRESS")
        return ImageReport(repository, tag, True, digest, "COMPLETE", findings=VULNERABLE if outcome == "critical" else ())
