"""The ALB's access log bucket: SSE-S3, private, written by the ELB log delivery only, over TLS only, expiring."""

import json

import pytest

from components.access_logs import LOG_DELIVERY, AccessLogBucket, AccessLogBucketArgs, bucket_policy
from offline.mocks import ACCOUNT
from tests.conftest import unknown_inputs

BUCKET = "aws:s3/bucket:Bucket"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"


def the_bucket(plan) -> str:
    """The bucket's id, its name, as the other resources name it (the mocks keep no id output)."""
    ids = {r.inputs["bucket"] for r in plan.managed if r.type.startswith("aws:s3/") and r.type != BUCKET}
    assert len(ids) == 1
    return ids.pop()


@pytest.fixture(scope="module")
def plan(run_component):
    return run_component(lambda: AccessLogBucket("edge-access-logs", AccessLogBucketArgs(retention_days=30)))


def test_encrypted_with_sse_s3_the_only_encryption_alb_logs_support_and_never_force_destroyed(plan):
    bucket = plan.one(BUCKET).inputs
    assert bucket["serverSideEncryptionConfiguration"] == {"rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}}
    assert bucket["forceDestroy"] is False
    assert bucket["bucketPrefix"] == "edge-access-logs-" and the_bucket(plan).startswith("edge-access-logs-")


def test_private_acls_off_and_every_public_access_block_on(plan):
    bucket_id = the_bucket(plan)
    ownership = plan.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership == {"bucket": bucket_id, "rule": {"objectOwnership": "BucketOwnerEnforced"}}
    block = plan.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert block == {"bucket": bucket_id, "blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True}


def test_only_the_elb_log_delivery_writes_under_its_prefix_and_only_over_tls(plan):
    bucket_id = the_bucket(plan)
    policy = plan.one(POLICY)
    assert policy.inputs["bucket"] == bucket_id
    assert plan.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").urn in policy.options["dependsOn"]
    allow, deny = json.loads(policy.inputs["policy"])["Statement"]
    arn = f"arn:aws:s3:::{bucket_id}"
    assert allow == {
        "Sid": "ElbLogDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{arn}/alb/AWSLogs/{ACCOUNT}/*",
    }
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Resource"] == [arn, f"{arn}/*"] and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_policy_grants_nothing_else():
    statements = json.loads(bucket_policy("logs", "alb", ACCOUNT))["Statement"]
    assert [s["Principal"] for s in statements if s["Effect"] == "Allow"] == [{"Service": LOG_DELIVERY}]


def test_logs_expire_after_the_retention(plan):
    lifecycle = plan.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs
    assert lifecycle["bucket"] == the_bucket(plan)
    [rule] = lifecycle["rules"]
    assert rule["status"] == "Enabled" and rule["filter"] == {"prefix": "alb/"} and rule["expiration"] == {"days": 30}


def test_every_resource_is_the_components_child_and_in_the_providers_schema(plan, reference_schema):
    schema = reference_schema("pulumi-aws-schema-subset.json")
    component = plan.one("carepath:edge:AccessLogBucket")
    resources = plan.children(component)
    assert len(resources) == 5
    for resource in resources:
        assert unknown_inputs(resource, schema) == [], resource.urn
