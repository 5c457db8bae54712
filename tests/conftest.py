"""Shared fixtures: the offline harness (mocks included) and the reference schemas."""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

import pytest

from components.routers.factory import TRAITS
from core.settings import Settings, parse
from core.settings.rules import PRODUCTION_STACKS
from offline import harness
from offline.harness import Plan, Registration

REFERENCE = harness.ROOT.parent / "shared" / "reference"


TEST_CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"


def settings_from(raw: Mapping[str, Any], stack: str = "staging", secret_keys: frozenset[str] = frozenset()) -> Settings:
    """`core.settings.parse` with the routers the program has. Off production, an edge that
    neither names a certificate nor opts in to plain HTTP gets `TEST_CERTIFICATE`, as every
    stack file has one or the other; tests of that rule call `parse` themselves."""
    edge = raw.get("edge", {})
    if stack not in PRODUCTION_STACKS and isinstance(edge, Mapping) and not {"certificateArn", "allowPlainHttp"} & set(edge):
        raw = {**raw, "edge": {**edge, "certificateArn": TEST_CERTIFICATE}}
    return parse(raw, stack, secret_keys, routers=TRAITS)


def one_service(service: Mapping[str, Any], name: str = "chat-api", **sections: Any) -> dict[str, Any]:
    """A raw config with one service (`services.<name>`) and any other sections."""
    return {"services": {name: dict(service)}, **sections}

_plans: dict[str, Plan] = {}


def _run_stack(stack: str, overrides: Mapping[str, Any] | None = None, unset: tuple[str, ...] = ()) -> Plan:
    """`offline.harness.run_stack`, memoised: plans are immutable, so tests can share them."""
    # Unsorted: overrides apply in order, and a key inside another one's value depends on it.
    key = json.dumps([stack, list((overrides or {}).items()), list(unset)])
    if key not in _plans:
        _plans[key] = harness.run_stack(stack, overrides or {}, unset)
    return _plans[key]


@pytest.fixture(scope="session")
def run_stack() -> Callable[..., Plan]:
    return _run_stack


@pytest.fixture(scope="session")
def run_component() -> Callable[..., Plan]:
    """Run a program that builds one component in isolation, with optional runtime config."""

    def run(build: Callable[[], Any], config: Mapping[str, str] | None = None) -> Plan:
        return harness.run_program("test", dict(config or {"aws:region": "us-east-1"}), build)

    return run


@pytest.fixture(scope="session")
def reference_schema() -> Callable[[str], dict]:
    cache: dict[str, dict] = {}

    def load(name: str) -> dict:
        if name not in cache:
            cache[name] = json.loads((REFERENCE / name).read_text())
        return cache[name]

    return load


def unknown_inputs(resource: Registration, schema: dict) -> list[str]:
    """Input paths of `resource` that its Pulumi package schema does not define (nested
    objects followed through `$ref`s the schema subset holds)."""
    definition = schema["resources"][resource.type]
    problems: list[str] = []

    def check(value: Any, properties: Mapping[str, Any], path: str) -> None:
        for key, item in value.items():
            if key not in properties:
                problems.append(f"{path}{key}")
                continue
            spec = properties[key]
            ref = spec.get("$ref", "") or spec.get("items", {}).get("$ref", "") or spec.get(
                "additionalProperties", {}
            ).get("$ref", "")
            nested = schema.get("types", {}).get(ref.removeprefix("#/types/"), {}).get("properties")
            if nested is None:
                continue
            if spec.get("type") == "array":
                for index, element in enumerate(item):
                    check(element, nested, f"{path}{key}[{index}].")
            elif "additionalProperties" in spec:
                for name, element in item.items():
                    check(element, nested, f"{path}{key}.{name}.")
            elif isinstance(item, Mapping):
                check(item, nested, f"{path}{key}.")

    check(resource.inputs, definition["inputProperties"], "")
    return problems


KUBERNETES_VERSION = "1.34"


def manifest(resource: Registration) -> dict:
    """A Kubernetes resource's inputs as the manifest the provider would apply."""
    assert resource.type.startswith("kubernetes:"), resource.type
    # Every field (a StorageClass has no `spec`), but the harness's "[secret]" stand-ins.
    return {key: value for key, value in resource.inputs.items() if value != "[secret]"}


def validate_builtin(resource: Registration) -> None:
    """Strict offline validation of a built-in kind against the cluster's Kubernetes version."""
    import kubernetes_validate

    kubernetes_validate.validate(manifest(resource), KUBERNETES_VERSION, strict=True)


def undeclared_fields(value: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Paths in `value` that `schema` (a CRD's OpenAPI schema) does not declare: CRD schemas allow
    unknown fields, so validation alone would not catch a field from another channel."""
    if isinstance(value, dict) and "properties" in schema:
        found: list[str] = []
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{path}{key}")
            else:
                found += undeclared_fields(item, schema["properties"][key], f"{path}{key}.")
        return found
    if isinstance(value, list) and "items" in schema:
        return [p for index, item in enumerate(value) for p in undeclared_fields(item, schema["items"], f"{path}[{index}].")]
    return []


def validate_crd(resource: Registration, schemas: dict) -> None:
    """Validate a custom resource against its CRD's OpenAPI schema (`group/version/Kind` keyed)."""
    import jsonschema

    body = manifest(resource)
    schema = schemas[f"{body['apiVersion']}/{body['kind']}"]
    # No meta-check of the schema itself: CRD schemas carry Go regexes (`^(?i)...`) Python cannot compile.
    validator = jsonschema.validators.validator_for(schema)(schema)
    validator.validate(body)
    if body["apiVersion"].startswith("gateway.networking.k8s.io/"):
        # The standard channel's schemas, like every CRD's, let unknown fields through.
        assert undeclared_fields(body, schema) == [], f"fields outside the standard channel in {resource.urn}"


CRD_SCHEMAS = {
    "elbv2.k8s.aws": "elbv2-crd-schemas.json",
    "gateway.networking.k8s.io": "gateway-api-crd-schemas.json",  # the standard channel
    "networking.istio.io": "istio-crd-schemas.json",
    "security.istio.io": "istio-crd-schemas.json",
    "monitoring.coreos.com": "monitoring-crd-schemas.json",
}


# Custom resources whose schema shared/reference does not hold; their own tests check their fields.
WITHOUT_REFERENCE_SCHEMA = {"telemetry.istio.io", "cert-manager.io"}


def validate_kubernetes(resource: Registration, reference_schema: Callable[[str], dict]) -> None:
    """Validate any Kubernetes resource the program creates: custom resources against their
    CRD schemas, built-in kinds strictly for the cluster's version. Helm charts are not manifests."""
    group = resource.type.split(":")[1].split("/")[0]
    if group in WITHOUT_REFERENCE_SCHEMA:
        return
    if group in CRD_SCHEMAS:
        validate_crd(resource, reference_schema(CRD_SCHEMAS[group]))
    elif resource.type not in NOT_MANIFESTS:
        validate_builtin(resource)


NOT_MANIFESTS = {"kubernetes:helm.sh/v4:Chart", "kubernetes:yaml/v2:ConfigFile"}  # components that install manifests from elsewhere
