import json

from components.registry import Registry, RegistryArgs
from tests.conftest import unknown_inputs


def test_repository_is_immutable_scanned_encrypted_and_expires_old_images(run_component, reference_schema):
    plan = run_component(lambda: Registry("chat-api", RegistryArgs(repository="team-a/chat-api", create=True, keep_releases=12)))
    repository = plan.one("aws:ecr/repository:Repository")
    assert repository.parent == plan.one("carepath:registry:Registry").urn
    assert repository.inputs["name"] == "team-a/chat-api"
    assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS"}]
    assert repository.inputs["forceDelete"] is False

    lifecycle = plan.one("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    rules = json.loads(lifecycle.inputs["policy"])["rules"]
    untagged, tagged = sorted(rules, key=lambda r: r["rulePriority"])
    assert untagged["selection"] == {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7}
    assert tagged["selection"]["countType"] == "imageCountMoreThan" and tagged["selection"]["countNumber"] == 12
    assert {r["action"]["type"] for r in rules} == {"expire"}

    schema = reference_schema("pulumi-aws-schema-subset.json")
    assert unknown_inputs(repository, schema) == []
    assert unknown_inputs(lifecycle, schema) == []


def test_existing_repository_is_looked_up_not_created(run_component):
    urls = []

    def build():
        registry = Registry("chat-api", RegistryArgs(repository="shared/chat-api", create=False, keep_releases=30))
        registry.repository_url.apply(urls.append)

    plan = run_component(build, {"aws:region": "eu-west-1"})
    assert plan.of_type("aws:ecr/repository:Repository") == []
    assert plan.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy") == []
    assert urls == ["123456789012.dkr.ecr.eu-west-1.amazonaws.com/shared/chat-api"]
