"""Pulumi mocks: plausible provider outputs for every resource and invoke the
program uses, so the whole program evaluates without AWS, a cluster or the CLI.

Outputs are camelCase (as providers return them). Fake values are derived from
the resource's name and inputs, so two runs of the same config agree and the
diff of two configs shows only what the config changed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Callable, Optional

import pulumi

ACCOUNT = "123456789012"
ZONES = ("a", "b", "c")


def _hex(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


class CarePathMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str):
        self.region = region

    def arn(self, service: str, resource: str, region: Optional[str] = None) -> str:
        return f"arn:aws:{service}:{self.region if region is None else region}:{ACCOUNT}:{resource}"

    # --- resources ---------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[Optional[str], dict]:
        # Custom resources echo their inputs; components (awsx, eks) expose only their outputs.
        outputs = dict(args.inputs) if args.custom else {}
        render = self._RESOURCES.get(args.typ)
        if render is not None:
            outputs.update(render(self, args.name, args.inputs))
        if args.typ.startswith("kubernetes:") and "metadata" in args.inputs:
            metadata = dict(args.inputs["metadata"])
            metadata.setdefault("name", args.name)
            outputs["metadata"] = metadata
        physical_id = next(
            (outputs[key] for key in ("id", "name") if isinstance(outputs.get(key), str)),
            f"{args.name}-{_hex(args.typ, args.name, length=7)}",
        )
        return physical_id, outputs

    def _repository(self, name: str, inputs: dict) -> dict:
        repo = inputs.get("name", name)
        return {
            "arn": self.arn("ecr", f"repository/{repo}"),
            "registryId": ACCOUNT,
            "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com/{repo}",
        }

    def _kms_key(self, name: str, inputs: dict) -> dict:
        key_id = f"{_hex(name, length=8)}-0000-4000-8000-{_hex(name, 'key', length=12)}"
        return {"arn": self.arn("kms", f"key/{key_id}"), "keyId": key_id}

    def _role(self, name: str, inputs: dict) -> dict:
        role = inputs.get("name") or f"{name}-{_hex(name, length=7)}"
        return {"arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "name": role, "uniqueId": f"AROA{_hex(name, length=16).upper()}"}

    def _policy(self, name: str, inputs: dict) -> dict:
        policy = inputs.get("name") or f"{name}-{_hex(name, length=7)}"
        return {"arn": f"arn:aws:iam::{ACCOUNT}:policy/{policy}", "name": policy}

    def _vpc(self, name: str, inputs: dict) -> dict:
        return {
            "vpcId": f"vpc-{_hex(name)}",
            "publicSubnetIds": [f"subnet-{_hex(name, 'public', z)}" for z in ZONES],
            "privateSubnetIds": [f"subnet-{_hex(name, 'private', z)}" for z in ZONES],
            "isolatedSubnetIds": [],
        }

    def _eks_cluster(self, name: str, inputs: dict) -> dict:
        cluster = inputs.get("name", name)
        issuer = f"oidc.eks.{self.region}.amazonaws.com/id/{_hex(cluster, length=32).upper()}"
        endpoint = f"https://{_hex(cluster, 'endpoint', length=32).upper()}.gr7.{self.region}.eks.amazonaws.com"
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster, "cluster": {"server": endpoint, "certificate-authority-data": "bW9jaw=="}}],
            "contexts": [{"name": "aws", "context": {"cluster": cluster, "user": "aws"}}],
            "current-context": "aws",
            "users": [
                {
                    "name": "aws",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster, "--output", "json"],
                        }
                    },
                }
            ],
        }
        return {
            "kubeconfig": kubeconfig,
            "kubeconfigJson": json.dumps(kubeconfig),
            "oidcProviderArn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer}",
            "oidcProviderUrl": f"https://{issuer}",
            "oidcIssuer": issuer,
            "clusterSecurityGroupId": f"sg-{_hex(cluster, 'cluster')}",
            "nodeSecurityGroupId": f"sg-{_hex(cluster, 'node')}",

        }

    def _load_balancer(self, name: str, inputs: dict) -> dict:
        suffix = _hex(name, length=16)
        return {
            "arn": self.arn("elasticloadbalancing", f"loadbalancer/app/{name}/{suffix}"),
            "dnsName": f"{name}-{suffix[:10]}.{self.region}.elb.amazonaws.com",
            "zoneId": "Z35SXDOTRQ7X7K",
        }

    def _target_group(self, name: str, inputs: dict) -> dict:
        return {"arn": self.arn("elasticloadbalancing", f"targetgroup/{name[:32]}/{_hex(name, length=16)}")}

    def _listener(self, name: str, inputs: dict) -> dict:
        return {"arn": self.arn("elasticloadbalancing", f"listener/app/{name}/{_hex(name, length=16)}")}

    def _security_group(self, name: str, inputs: dict) -> dict:
        group = f"sg-{_hex(name)}"
        return {"id": group, "arn": self.arn("ec2", f"security-group/{group}")}

    def _web_acl(self, name: str, inputs: dict) -> dict:
        acl_id = _hex(name, "web-acl")
        return {"id": acl_id, "arn": self.arn("wafv2", f"regional/webacl/{inputs.get('name', name)}/{acl_id}")}

    def _random_password(self, name: str, inputs: dict) -> dict:
        return {"result": _hex(name, "password", length=int(inputs.get("length", 32)))}

    _RESOURCES: dict[str, Callable[["CarePathMocks", str, dict], dict]] = {
        "random:index/randomPassword:RandomPassword": _random_password,
        "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
        "aws:lb/targetGroup:TargetGroup": _target_group,
        "aws:lb/listener:Listener": _listener,
        "aws:ec2/securityGroup:SecurityGroup": _security_group,
        "aws:wafv2/webAcl:WebAcl": _web_acl,
        "aws:ecr/repository:Repository": _repository,
        "aws:kms/key:Key": _kms_key,
        "aws:ec2/launchTemplate:LaunchTemplate": lambda self, name, inputs: {"latestVersion": 1},
        "aws:iam/role:Role": _role,
        "aws:iam/policy:Policy": _policy,
        "awsx:ec2:Vpc": _vpc,
        "eks:index:Cluster": _eks_cluster,
    }

    # --- invokes -----------------------------------------------------------------

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:  # type: ignore[override]
        # A bare dict is the monitor's "no check failures" answer.
        render = self._CALLS.get(args.token)
        if render is None:
            raise NotImplementedError(f"offline mocks do not implement the invoke {args.token}")
        return render(self, args.args)

    def _get_repository(self, args: dict) -> dict:
        return self._repository(args["name"], args)

    def _caller_identity(self, args: dict) -> dict:
        return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/offline", "userId": "OFFLINE"}

    def _region(self, args: dict) -> dict:
        return {"name": self.region, "region": self.region, "id": self.region}

    def _get_image(self, args: dict) -> dict:
        digest = "sha256:" + hashlib.sha256(f"{args['repositoryName']}:{args.get('imageTag')}".encode()).hexdigest()
        return {"imageDigest": digest, "imageTags": [args.get("imageTag")], "registryId": ACCOUNT, "repositoryName": args["repositoryName"]}

    _CALLS: dict[str, Callable[["CarePathMocks", dict], dict]] = {
        "aws:ecr/getImage:getImage": _get_image,
        "aws:ecr/getRepository:getRepository": _get_repository,
        "aws:index/getCallerIdentity:getCallerIdentity": _caller_identity,
        "aws:index/getRegion:getRegion": _region,
    }
