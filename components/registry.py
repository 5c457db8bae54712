"""Registry: the ECR repository chat-api images are pulled from.

Tags are immutable (a tag names one image forever, so a config tag is a pin),
images are scanned on push and encrypted with KMS (the AWS-managed ECR key).
The lifecycle policy expires untagged images after a week and keeps the newest
`keep_releases` tagged images; keep that above the number of tags pushed between
two releases so a rollback target is never expired.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

UNTAGGED_EXPIRY_DAYS = 7


def lifecycle_policy(keep_releases: int) -> str:
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"Expire untagged images after {UNTAGGED_EXPIRY_DAYS} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": UNTAGGED_EXPIRY_DAYS,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"Keep the newest {keep_releases} tagged images",
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPatternList": ["*"],
                        "countType": "imageCountMoreThan",
                        "countNumber": keep_releases,
                    },
                    "action": {"type": "expire"},
                },
            ]
        }
    )


@dataclass(frozen=True)
class RegistryArgs:
    repository: str
    create: bool  # false: use the existing repository of that name
    keep_releases: int


class Registry(pulumi.ComponentResource):
    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]

    def __init__(self, name: str, args: RegistryArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:registry:Registry", name, None, opts)
        if args.create:
            repository = aws.ecr.Repository(
                name,
                name=args.repository,
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS")],
                force_delete=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            aws.ecr.LifecyclePolicy(
                name,
                repository=repository.name,
                policy=lifecycle_policy(args.keep_releases),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.repository_url = repository.repository_url
            self.repository_arn = repository.arn
            self._depends_on: list[pulumi.Resource] = [repository]
        else:
            existing = aws.ecr.get_repository_output(
                name=args.repository, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            self.repository_url = existing.repository_url
            self.repository_arn = existing.arn
            self._depends_on = []
        self._name = args.repository
        self.register_outputs({"repositoryUrl": self.repository_url, "repositoryArn": self.repository_arn})

    def image(self, tag: str, pin_digest: bool) -> pulumi.Output[str]:
        """`<repository URL>:<tag>`, or with `pin_digest` `<URL>:<tag>@<digest>`, the digest the tag
        points at when Pulumi runs (the tag stays for people; the digest is what the node pulls)."""
        if not pin_digest:
            return pulumi.Output.concat(self.repository_url, ":", tag)
        found = aws.ecr.get_image_output(
            repository_name=self._name,
            image_tag=tag,
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=self._depends_on),
        )
        return pulumi.Output.concat(self.repository_url, ":", tag, "@", found.image_digest)
