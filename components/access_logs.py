"""Access logs: the private S3 bucket the ALB writes its access logs to.

Every request the edge answers (client address, path, status, latencies) lands under
`<prefix>/AWSLogs/<account>/elasticloadbalancing/` and expires after `retention_days`.

- Encryption: SSE-S3 (AES256). The ALB guide ("Enable access logs for your Application Load
  Balancer", step 1) names Amazon S3-managed keys as the only server-side encryption access logs
  support: with SSE-KMS the ALB cannot write. The schema subset has no separate
  `aws:s3/bucketServerSideEncryptionConfiguration` type, so the rule is the Bucket's own
  `serverSideEncryptionConfiguration` input.
- Who writes: only Elastic Load Balancing's log delivery, as the service principal
  `logdelivery.elasticloadbalancing.amazonaws.com` (the guide's policy for every Region; the
  per-Region ELB account, 127311923021 in us-east-1, is the legacy form for Regions opened before
  August 2022, still accepted there), and only under this account's prefix.
- Nothing public: every public access block on, ACLs off (BucketOwnerEnforced), and any request
  not over TLS denied.
- `force_destroy` stays off: a stack's destroy never deletes the logs a review may ask for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

LOG_DELIVERY = "logdelivery.elasticloadbalancing.amazonaws.com"


def bucket_policy(bucket: str, prefix: str, account: str) -> str:
    """The bucket policy: the ELB log delivery writes under `prefix` for `account`; no one
    reaches the bucket without TLS."""
    arn = f"arn:aws:s3:::{bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ElbLogDelivery",
                    "Effect": "Allow",
                    "Principal": {"Service": LOG_DELIVERY},
                    "Action": "s3:PutObject",
                    "Resource": f"{arn}/{prefix}/AWSLogs/{account}/*",
                },
                {
                    "Sid": "TlsOnly",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        }
    )


@dataclass(frozen=True)
class AccessLogBucketArgs:
    retention_days: int  # `carepath:edge.accessLogs.retentionDays`
    prefix: str = "alb"  # must not contain AWSLogs: ELB adds that part


class AccessLogBucket(pulumi.ComponentResource):
    bucket: pulumi.Output[str]  # the bucket's name, for the LoadBalancer's `access_logs`
    prefix: str
    policy: aws.s3.BucketPolicy  # the ALB checks it may write when logging is turned on: depend on it

    def __init__(self, name: str, args: AccessLogBucketArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("carepath:edge:AccessLogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            name,
            bucket_prefix=f"{name}-",
            force_destroy=False,
            server_side_encryption_configuration={"rule": {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}},
            opts=child,
        )
        aws.s3.BucketOwnershipControls(name, bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        public_access = aws.s3.BucketPublicAccessBlock(
            name,
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        # The bucket's id is its name; the policy names it in its ARNs.
        self.policy = aws.s3.BucketPolicy(
            name,
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.id, account).apply(lambda values: bucket_policy(values[0], args.prefix, values[1])),
            # S3 aborts concurrent changes to one bucket's configuration: one after the other.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        aws.s3.BucketLifecycleConfiguration(
            name,
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {"prefix": f"{args.prefix}/"},
                    "expiration": {"days": args.retention_days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            opts=child,
        )
        self.bucket = bucket.id
        self.prefix = args.prefix
        self.register_outputs({"bucket": self.bucket})
