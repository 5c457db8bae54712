"""BackendTls: what the ALB's TLS to its targets needs in the cluster.

- cert-manager, from its Helm chart (https://charts.jetstack.io, `CHART_VERSION`, its CRDs with
  it), in a namespace of its own at the "restricted" Pod Security Standard, two replicas of its
  controller and webhook under PodDisruptionBudgets.
- An in-cluster CA: a self-signed ClusterIssuer signs the CA's own Certificate, and the CA
  ClusterIssuer (`CA_ISSUER`) signs every backend's certificate (`certificate`): the mesh's
  gateways' in `istio-ingress`, and each alb-routed service's TLS proxy's in its namespaces.
  The ALB does not verify its targets' certificates (AWS: "the load balancer does not validate
  the certificates on targets"), so a CA no client trusts is enough: what it buys is that the
  hop from the ALB to the pods is encrypted. For the same reason a proxy still serving a
  certificate cert-manager has since renewed (nginx reads it at start) loses nothing.
- With an alb-routed service, the source of its pods' TLS proxy image: an ECR pull-through
  cache rule for ECR Public, so nodes pull the Docker official nginx image from the stack's
  own registry (`proxy_image`), never from the internet. A repository creation template makes
  the repositories the cache creates immutable (and encrypted): once a tag is cached, every node
  runs the same image under it, as with the services' own repositories. The nodes' role may
  create and fill those repositories (`ecr:CreateRepository`, `ecr:BatchImportUpstreamImage`,
  what a first pull through a cache takes) under the cache's prefix only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

CHART_REPOSITORY = "https://charts.jetstack.io"
CHART_VERSION = "v1.19.2"
NAMESPACE = "cert-manager"
API_VERSION = "cert-manager.io/v1"
SELF_SIGNED_ISSUER = "carepath-self-signed"
CA_ISSUER = "carepath-ca"  # the ClusterIssuer of every backend certificate
CA_SECRET = "carepath-ca"  # in cert-manager's namespace, where a ClusterIssuer reads it
REPLICAS = 2
# Backends' certificates: renewed a month before they end, each time with a new key.
DURATION, RENEW_BEFORE = "2160h", "720h"
CA_DURATION, CA_RENEW_BEFORE = "43800h", "8760h"
PRIVATE_KEY = {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
CACHE_PREFIX = "ecr-public"  # <registry>/ecr-public/<ECR Public path>
PROXY_IMAGE_PATH = "docker/library/nginx"  # the Docker official image, as ECR Public mirrors it
PROXY_IMAGE_TAG = "1.28.0-alpine"


def proxy_image(repository_url: str) -> str:
    """The TLS proxy's image through the pull-through cache of the registry that holds
    `repository_url` (`<account>.dkr.ecr.<region>.amazonaws.com/<repository>`)."""
    registry = repository_url.split("/", 1)[0]
    return f"{registry}/{CACHE_PREFIX}/{PROXY_IMAGE_PATH}:{PROXY_IMAGE_TAG}"


def certificate(
    name: str, namespace: pulumi.Input[str], secret: str, dns_names: Sequence[str], opts: pulumi.ResourceOptions, *, ca: bool = False
) -> k8s.apiextensions.CustomResource:
    """A cert-manager Certificate written to Secret `secret` in `namespace`: signed by the CA
    issuer, or, with `ca`, the CA's own, self-signed."""
    spec: dict[str, Any] = {
        "secretName": secret,
        "duration": CA_DURATION if ca else DURATION,
        "renewBefore": CA_RENEW_BEFORE if ca else RENEW_BEFORE,
        "privateKey": PRIVATE_KEY,
        "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": SELF_SIGNED_ISSUER if ca else CA_ISSUER},
    }
    if ca:
        spec.update(isCA=True, commonName="CarePath in-cluster CA", usages=["cert sign", "crl sign"])
    else:
        spec.update(dnsNames=list(dns_names), usages=["server auth", "digital signature"])
    return k8s.apiextensions.CustomResource(
        name, api_version=API_VERSION, kind="Certificate", metadata={"name": secret, "namespace": namespace}, spec=spec, opts=opts
    )


# What a node's first pull of an image through the cache takes, beyond pulling.
CACHE_PULL_ACTIONS = ("ecr:CreateRepository", "ecr:BatchImportUpstreamImage")


def cache_pull_policy(region: str, account: str) -> str:
    """The nodes may create and fill the cache's repositories, and no other."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": list(CACHE_PULL_ACTIONS), "Resource": f"arn:aws:ecr:{region}:{account}:repository/{CACHE_PREFIX}/*"}
            ],
        }
    )


@dataclass(frozen=True)
class BackendTlsArgs:
    proxy_image_cache: bool  # an alb-routed service's pods run the TLS proxy
    node_role: pulumi.Input[str]  # the nodes' IAM role (name): it pulls the proxy through the cache


class BackendTls(pulumi.ComponentResource):
    """Kubernetes children use the provider given in `opts.providers`."""

    issuer: k8s.apiextensions.CustomResource  # the CA ClusterIssuer: backends' certificates wait for it
    image_cache: Optional[pulumi.Resource]  # the pull-through cache rule: the proxies' pods wait for it

    def __init__(self, name: str, args: BackendTlsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:certificates:BackendTls", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            NAMESPACE,
            metadata={"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        budget = {"enabled": True, "minAvailable": 1}
        chart = k8s.helm.v4.Chart(
            "cert-manager",
            chart="cert-manager",
            version=CHART_VERSION,
            repository_opts={"repo": CHART_REPOSITORY},
            namespace=namespace.metadata.apply(lambda metadata: metadata["name"]),
            values={
                "crds": {"enabled": True, "keep": True},
                "replicaCount": REPLICAS,
                "podDisruptionBudget": budget,
                "webhook": {"replicaCount": REPLICAS, "podDisruptionBudget": budget},
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        after_chart = pulumi.ResourceOptions(parent=self, depends_on=[chart])
        self_signed = k8s.apiextensions.CustomResource(
            SELF_SIGNED_ISSUER, api_version=API_VERSION, kind="ClusterIssuer", metadata={"name": SELF_SIGNED_ISSUER}, spec={"selfSigned": {}}, opts=after_chart
        )
        authority = certificate(
            CA_SECRET, NAMESPACE, CA_SECRET, (), pulumi.ResourceOptions(parent=self, depends_on=[self_signed, namespace]), ca=True
        )
        self.issuer = k8s.apiextensions.CustomResource(
            CA_ISSUER,
            api_version=API_VERSION,
            kind="ClusterIssuer",
            metadata={"name": CA_ISSUER},
            spec={"ca": {"secretName": CA_SECRET}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[authority]),
        )
        self.image_cache = self._image_cache(name, args.node_role) if args.proxy_image_cache else None
        self.register_outputs({"issuer": CA_ISSUER})

    def _image_cache(self, name: str, node_role: pulumi.Input[str]) -> pulumi.Resource:
        """The cache rule, once its repositories' template and the nodes' right to use it exist."""
        child = pulumi.ResourceOptions(parent=self)
        template = aws.ecr.RepositoryCreationTemplate(
            name,
            prefix=CACHE_PREFIX,
            applied_fors=["PULL_THROUGH_CACHE"],
            description="Repositories of the ECR Public pull-through cache: immutable, encrypted",
            image_tag_mutability="IMMUTABLE",
            encryption_configurations=[{"encryption_type": "AES256"}],
            opts=child,
        )
        invoke = pulumi.InvokeOutputOptions(parent=self)
        region = aws.get_region_output(opts=invoke).region
        account = aws.get_caller_identity_output(opts=invoke).account_id
        grant = aws.iam.RolePolicy(
            f"{name}-node-cache-pull",
            role=node_role,
            policy=pulumi.Output.all(region, account).apply(lambda values: cache_pull_policy(values[0], values[1])),
            opts=child,
        )
        return aws.ecr.PullThroughCacheRule(
            name,
            ecr_repository_prefix=CACHE_PREFIX,
            upstream_registry_url="public.ecr.aws",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[template, grant]),
        )
