import pulumi

from components.target_group_router import TargetGroupRouter, TargetGroupRouterArgs
from core.release import ReleasePlan, TrackSpec
from tests.conftest import validate_crd

GROUPS = {"blue": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edge-blue/0123456789abcdef",
          "green": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edge-green/fedcba9876543210"}


def test_one_binding_per_track_to_its_own_target_group(run_component, reference_schema):
    plan = ReleasePlan("blue-green", (TrackSpec("blue", "v1", 2), TrackSpec("green", "v2", 2)), (("blue", 100),), test_track="green")

    def build():
        controller = pulumi.CustomResource("carepath:test:Controller", "controller", {})
        TargetGroupRouter("router", TargetGroupRouterArgs(namespace="carepath-test", plan=plan, target_group_arns=GROUPS, controller=controller))

    result = run_component(build)
    bindings = {r.inputs["metadata"]["name"]: r for r in result.of_type("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")}
    assert set(bindings) == {"chat-api-blue", "chat-api-green"}
    for colour in ("blue", "green"):
        binding = bindings[f"chat-api-{colour}"]
        assert binding.inputs["spec"] == {
            "serviceRef": {"name": f"chat-api-{colour}", "port": 80},
            "targetGroupARN": GROUPS[colour],
            "targetType": "ip",
        }
        assert binding.inputs["metadata"]["namespace"] == "carepath-test"
        assert result.one("carepath:test:Controller").urn in binding.options["dependsOn"]
        validate_crd(binding, reference_schema("elbv2-crd-schemas.json"))
