"""checkov (3.3, `--framework kubernetes`) over every Kubernetes object each stack creates under the
mocks, and over each stack with a release in flight: a failed check fails the test unless
policy/checkov-exceptions.yaml lists it with the reason it does not apply, and an entry there that
matches no failure any more fails it too. checkov runs from a virtualenv of its own
(scripts/ensure-checkov); without it these tests fail, never skip, naming the script.

Helm charts (istiod, the ingress gateway, the load balancer controller, the monitoring stack) are
remote components that render nothing under the mocks, so their objects are not scanned here.
`make checkov` prints passed, failed and excepted checks per variant."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pytest
import yaml

from offline.harness import ROOT, Plan
from policy.rules import ECR_IMAGE
from tests.conftest import NOT_MANIFESTS, manifest

EXCEPTIONS = ROOT / "policy" / "checkov-exceptions.yaml"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
OFFLINE = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}  # no look for a newer checkov on PyPI
IN_FLIGHT = "v2.0.0"

# name: (stack, config overrides)
VARIANTS: dict[str, tuple[str, Mapping[str, Any]]] = {
    "demo": ("demo", {}),
    "staging": ("staging", {}),
    "production": ("production", {}),
    "staging-canary": ("staging", {"services.chat-api.rollout.canary.tag": IN_FLIGHT, "services.chat-api.rollout.canary.weight": 10}),
    "production-green": ("production", {"services.chat-api.rollout.blueGreen.green.tag": IN_FLIGHT}),  # the idle colour on a new tag
}


@dataclass(frozen=True)
class Finding:
    check: str
    title: str
    resource: str  # checkov's id: Kind.namespace.name
    origin: str  # the URN of the object it came from

    def __str__(self) -> str:
        return f"{self.check} ({self.title}) on {self.resource}, from {self.origin}"


@dataclass(frozen=True)
class Exemption:
    check: str
    resources: tuple[str, ...]  # shell-style patterns over checkov's resource id
    reason: str

    def covers(self, finding: Finding) -> bool:
        return finding.check == self.check and any(fnmatch.fnmatchcase(finding.resource, p) for p in self.resources)


@dataclass(frozen=True)
class Scan:
    objects: tuple[Mapping[str, Any], ...]
    passed: tuple[Finding, ...]
    failed: tuple[Finding, ...]
    resource_count: int
    parsing_errors: int


def load_exemptions(path: Path = EXCEPTIONS) -> tuple[Exemption, ...]:
    return tuple(Exemption(entry["check"], tuple(entry["resources"]), entry["reason"]) for entry in yaml.safe_load(path.read_text()))


def unexcused(failed: Sequence[Finding], exemptions: Sequence[Exemption]) -> list[Finding]:
    return [finding for finding in failed if not any(e.covers(finding) for e in exemptions)]


def stale(exemptions: Sequence[Exemption], failed: Sequence[Finding]) -> list[str]:
    """Each pattern of each entry that matches no failed check."""
    return [
        f"{e.check} {pattern}"
        for e in exemptions
        for pattern in e.resources
        if not any(f.check == e.check and fnmatch.fnmatchcase(f.resource, pattern) for f in failed)
    ]


def kubernetes_objects(plan: Plan) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """file name: (URN, manifest) for every Kubernetes object the plan creates, charts aside."""
    found = [r for r in plan.resources if r.type.startswith("kubernetes:") and r.type not in NOT_MANIFESTS]
    return {f"{i:03d}-{re.sub(r'[^A-Za-z0-9.-]', '-', r.name)}.yaml": (r.urn, manifest(r)) for i, r in enumerate(found)}


def run_checkov(checkov: Path, objects: Mapping[str, tuple[str, Mapping[str, Any]]]) -> Scan:
    with tempfile.TemporaryDirectory() as directory:
        for name, (_, body) in objects.items():
            (Path(directory) / name).write_text(yaml.safe_dump(dict(body), sort_keys=False))
        # --soft-fail: failed checks exit 0, so a non-zero exit is checkov itself failing.
        ran = subprocess.run(
            [str(checkov), "--framework", "kubernetes", "--directory", directory, "--output", "json", "--soft-fail", "--skip-download"],
            cwd=directory, capture_output=True, text=True, timeout=300, env=OFFLINE,
        )
    assert ran.returncode == 0, f"checkov exited {ran.returncode}: {ran.stderr[-2000:]}"
    report = json.loads(ran.stdout)

    def findings(key: str) -> tuple[Finding, ...]:
        return tuple(
            Finding(r["check_id"], r["check_name"], r["resource"], objects[Path(r["file_path"]).name][0]) for r in report["results"][key]
        )

    return Scan(
        tuple(body for _, body in objects.values()),
        findings("passed_checks"),
        findings("failed_checks"),
        report["summary"]["resource_count"],
        report["summary"]["parsing_errors"],
    )


@pytest.fixture(scope="module")
def checkov() -> Path:
    assert CHECKOV.exists(), f"{CHECKOV.relative_to(ROOT)} is missing: run scripts/ensure-checkov"
    return CHECKOV


@pytest.fixture(scope="module")
def scans(run_stack: Callable[..., Plan], checkov: Path) -> dict[str, Scan]:
    return {name: run_checkov(checkov, kubernetes_objects(run_stack(stack, overrides))) for name, (stack, overrides) in VARIANTS.items()}


@pytest.fixture(scope="module")
def exemptions() -> tuple[Exemption, ...]:
    return load_exemptions()


def test_checkov_is_the_pinned_version(checkov: Path) -> None:
    pins = [(ROOT / "tools" / "checkov" / name).read_text() for name in ("requirements.txt", "constraints.txt")]
    versions = {match for text in pins for match in re.findall(r"^checkov==(\S+)$", text, re.MULTILINE)}
    ran = subprocess.run([str(checkov), "--version"], capture_output=True, text=True, timeout=60, env=OFFLINE)
    assert versions == {ran.stdout.strip()}, "run scripts/ensure-checkov"


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_failed_check_is_listed_with_its_reason(variant: str, scans: dict[str, Scan], exemptions: tuple[Exemption, ...]) -> None:
    left = unexcused(scans[variant].failed, exemptions)
    assert not left, f"{variant}: fix these, or list them in {EXCEPTIONS.relative_to(ROOT)} with why they do not apply:\n" + "\n".join(map(str, left))


@pytest.mark.parametrize("variant", VARIANTS)
def test_checkov_reads_every_object(variant: str, scans: dict[str, Scan]) -> None:
    scan = scans[variant]
    assert scan.parsing_errors == 0
    # It counts each object once, and a Pod for each workload's template on top.
    assert scan.resource_count >= len(scan.objects) > 0


def test_no_exception_is_stale(scans: dict[str, Scan], exemptions: tuple[Exemption, ...]) -> None:
    failed = [finding for scan in scans.values() for finding in scan.failed]
    left = stale(exemptions, failed)
    assert not left, f"entries of {EXCEPTIONS.relative_to(ROOT)} that no variant fails any more, to remove: {left}"


def test_every_exception_names_a_check_and_a_reason(exemptions: tuple[Exemption, ...]) -> None:
    for e in exemptions:
        assert re.fullmatch(r"CKV2?_K8S_\d+", e.check), e
        assert e.resources and all(e.resources), e
        assert len(e.reason.split()) >= 10, f"{e.check}: say why it does not apply"


def test_summary(scans: dict[str, Scan], exemptions: tuple[Exemption, ...]) -> None:
    """Passed, failed and excepted checks per variant (`make checkov` shows them); checkov ran its
    workload checks on every Deployment."""
    print(f"\n{'variant':<18}{'objects':>8}{'passed':>8}{'failed':>8}{'excepted':>10}")
    for name, scan in scans.items():
        excepted = len(scan.failed) - len(unexcused(scan.failed, exemptions))
        print(f"{name:<18}{len(scan.objects):>8}{len(scan.passed):>8}{len(scan.failed):>8}{excepted:>10}")
        deployments = {f"Deployment.{o['metadata']['namespace']}.{o['metadata']['name']}" for o in scan.objects if o["kind"] == "Deployment"}
        assert deployments and deployments <= {f.resource for f in scan.passed}, name


def test_the_image_exceptions_still_hold(run_stack: Callable[..., Plan]) -> None:
    """CKV_K8S_43 and CKV_K8S_15 are listed because every image is pinned by its digest or is a tag
    in an ECR repository the stack makes immutable (its own, or one a pull-through cache creates
    under the stack's immutable creation template): any other image voids their reason."""
    for name, (stack, overrides) in VARIANTS.items():
        plan = run_stack(stack, overrides)
        immutable = {r.inputs["name"] for r in plan.of_type("aws:ecr/repository:Repository") if r.inputs.get("imageTagMutability") == "IMMUTABLE"}
        # Repositories ECR creates for the stack (a pull-through cache's) under an immutable template.
        templates = [
            f"{r.inputs['prefix']}/"
            for r in plan.of_type("aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate")
            if r.inputs.get("imageTagMutability") == "IMMUTABLE"
        ]
        for _, body in kubernetes_objects(plan).values():
            if body["kind"] != "Deployment":
                continue
            pod = body["spec"]["template"]["spec"]
            for container in pod["containers"] + pod.get("initContainers", []):
                image = container["image"]
                match = ECR_IMAGE.fullmatch(image)
                assert match, f"{name}: {image} is not an ECR image"
                repository = image.split("/", 1)[1].split("@")[0].split(":")[0]
                assert match["digest"] or repository in immutable or repository.startswith(tuple(templates)), (
                    f"{name}: {image} has no digest and its repository is not one the stack makes immutable"
                )


FAILED = Finding("CKV_K8S_15", "Image Pull Policy should be Always", "Deployment.carepath-demo.chat-api", "urn:chat-api")


def test_a_failure_no_entry_covers_is_reported() -> None:
    other_check = Exemption("CKV_K8S_43", ("*",), "another check")
    other_object = Exemption("CKV_K8S_15", ("Deployment.carepath-staging.*",), "another namespace")
    assert unexcused([FAILED], [other_check, other_object]) == [FAILED]
    assert unexcused([FAILED], [Exemption("CKV_K8S_15", ("Deployment.carepath-*.*",), "every stack")]) == []


def test_an_entry_that_matches_nothing_is_stale() -> None:
    entry = Exemption("CKV_K8S_15", ("Deployment.carepath-demo.*", "Service.*"), "reason")
    assert stale([entry], [FAILED]) == ["CKV_K8S_15 Service.*"]
    assert stale([Exemption("CKV_K8S_43", ("*",), "reason")], [FAILED]) == ["CKV_K8S_43 *"]
