"""BackendTls: cert-manager at a pinned version, the in-cluster CA's chain, and the pull-through
cache the pods' TLS proxy image comes through."""

import inspect
import json
import re

import pulumi_aws as aws
import pytest

from components.certificates import CHART_REPOSITORY, CHART_VERSION, BackendTls, BackendTlsArgs, proxy_image
from tests.conftest import unknown_inputs, validate_kubernetes

CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
CLUSTER_ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"
CACHE_RULE = "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"
TEMPLATE = "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate"


@pytest.fixture(scope="module")
def plan(run_component):
    return run_component(lambda: BackendTls("backend-tls", BackendTlsArgs(proxy_image_cache=True, node_role="carepath-test-node")))


def test_cert_manager_from_its_chart_with_its_crds_in_a_restricted_namespace(plan):
    chart = plan.one("kubernetes:helm.sh/v4:Chart")
    assert (chart.inputs["chart"], chart.inputs["version"], chart.inputs["repositoryOpts"]["repo"]) == ("cert-manager", CHART_VERSION, CHART_REPOSITORY)
    assert CHART_VERSION == "v1.19.2"
    values = chart.inputs["values"]
    assert values["crds"] == {"enabled": True, "keep": True}
    # Two replicas under a budget: a node drain never stops issuing, nor the webhook admitting.
    assert values["replicaCount"] == values["webhook"]["replicaCount"] == 2
    assert values["podDisruptionBudget"]["enabled"] is values["webhook"]["podDisruptionBudget"]["enabled"] is True
    namespace = plan.one("kubernetes:core/v1:Namespace")
    assert namespace.inputs["metadata"] == {"name": "cert-manager", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}


def test_a_self_signed_issuer_signs_the_ca_that_signs_the_backends(plan, reference_schema):
    chart = plan.one("kubernetes:helm.sh/v4:Chart")
    issuers = {r.inputs["metadata"]["name"]: r for r in plan.of_type(CLUSTER_ISSUER)}
    assert issuers["carepath-self-signed"].inputs["spec"] == {"selfSigned": {}}
    assert issuers["carepath-ca"].inputs["spec"] == {"ca": {"secretName": "carepath-ca"}}
    [authority] = plan.of_type(CERTIFICATE)
    spec = authority.inputs["spec"]
    assert authority.inputs["metadata"] == {"name": "carepath-ca", "namespace": "cert-manager"}
    assert spec["isCA"] is True and spec["secretName"] == "carepath-ca" and spec["commonName"]
    assert spec["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "carepath-self-signed"}
    assert spec["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
    assert (spec["duration"], spec["renewBefore"]) == ("43800h", "8760h")
    # In order: the chart's CRDs, the self-signed issuer, the CA's certificate, the CA issuer.
    assert chart.urn in issuers["carepath-self-signed"].options["dependsOn"]
    assert issuers["carepath-self-signed"].urn in authority.options["dependsOn"]
    assert authority.urn in issuers["carepath-ca"].options["dependsOn"]
    for resource in [*issuers.values(), authority]:
        validate_kubernetes(resource, reference_schema)


def provider_inputs(resource: type) -> set[str]:
    """The inputs the installed pulumi-aws takes for a type the schema subset does not hold, in
    the engine's camelCase."""
    names = inspect.signature(resource._internal_init).parameters
    return {re.sub(r"_(\w)", lambda m: m[1].upper(), name) for name in names if name not in {"__self__", "resource_name", "opts", "__props__"}}


def test_the_proxy_image_comes_through_a_pull_through_cache_of_ecr_public(plan):
    rule = plan.one(CACHE_RULE)
    assert rule.inputs == {"ecrRepositoryPrefix": "ecr-public", "upstreamRegistryUrl": "public.ecr.aws"}
    assert set(rule.inputs) <= provider_inputs(aws.ecr.PullThroughCacheRule)
    assert proxy_image("210987654321.dkr.ecr.eu-west-1.amazonaws.com/carepath-triage-api") == (
        "210987654321.dkr.ecr.eu-west-1.amazonaws.com/ecr-public/docker/library/nginx:1.28.0-alpine"
    )


def test_the_caches_repositories_are_immutable_and_the_nodes_may_fill_them_only(plan, reference_schema):
    template = plan.one(TEMPLATE)
    assert template.inputs["prefix"] == "ecr-public" and template.inputs["appliedFors"] == ["PULL_THROUGH_CACHE"]
    # A cached tag then names one image on every node, as the services' own tags do.
    assert template.inputs["imageTagMutability"] == "IMMUTABLE"
    assert template.inputs["encryptionConfigurations"] == [{"encryptionType": "AES256"}]
    assert set(template.inputs) <= provider_inputs(aws.ecr.RepositoryCreationTemplate)
    [grant] = plan.of_type("aws:iam/rolePolicy:RolePolicy")
    assert grant.inputs["role"] == "carepath-test-node" and not unknown_inputs(grant, reference_schema("pulumi-aws-schema-subset.json"))
    [statement] = json.loads(grant.inputs["policy"])["Statement"]
    assert statement["Action"] == ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"]
    assert statement["Resource"] == "arn:aws:ecr:us-east-1:123456789012:repository/ecr-public/*"
    rule = plan.one(CACHE_RULE)
    assert {template.urn, grant.urn} <= set(rule.options["dependsOn"])


def test_without_a_pod_the_alb_targets_no_cache_rule(run_component):
    plan = run_component(lambda: BackendTls("backend-tls", BackendTlsArgs(proxy_image_cache=False, node_role="carepath-test-node")))
    assert plan.of_type(CACHE_RULE) == plan.of_type(TEMPLATE) == plan.of_type("aws:iam/rolePolicy:RolePolicy") == []
    assert {r.inputs["metadata"]["name"] for r in plan.of_type(CLUSTER_ISSUER)} == {"carepath-self-signed", "carepath-ca"}
