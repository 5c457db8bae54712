import json

import pulumi
import pytest

from components.track import TlsProxy, Track, TrackArgs, tls_proxy_config_map
from core.drain import drain_timings
from core.release import Track as TrackName
from core.release import TrackSpec
from core.settings import ServiceSettings
from tests.conftest import one_service, settings_from, validate_builtin

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/carepath-chat-api:v2.0.0"
PROXY_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ecr-public/docker/library/nginx:1.28.0-alpine"


def service_settings(service="chat-api", autoscaling=False) -> ServiceSettings:
    raw = {
        "tag": "v2.0.0",
        "replicas": 3,
        "port": 9000,
        "healthPath": "/ready",
        "startupSeconds": 120,
        "autoscaling": {"enabled": autoscaling, "minReplicas": 3, "maxReplicas": 9},
        "rollout": {"strategy": "rolling", "rolling": {"maxSurge": "25%", "maxUnavailable": 0, "minReadySeconds": 20}},
    }
    return settings_from(one_service(raw, service), "demo").service(service)


def build_track(run_component, *, service="chat-api", track: TrackName = "stable", autoscaling=False, mesh=False, tls_proxy=None):
    spec = TrackSpec(service, track, "v2.0.0", 3, "carepath-test")
    return run_component(
        lambda: Track(
            spec.deployment,
            TrackArgs(
                namespace="carepath-test",
                spec=spec,
                image=IMAGE,
                settings=service_settings(service, autoscaling),
                drain=drain_timings(30, 15),
                mesh=mesh,
                tls_proxy=tls_proxy,
            ),
        )
    )


@pytest.fixture(scope="module")
def plan(run_component):
    return build_track(run_component)


def test_names_labels_and_selector_follow_the_contract(plan):
    deployment = plan.one("kubernetes:apps/v1:Deployment").inputs
    service = plan.one("kubernetes:core/v1:Service").inputs
    pdb = plan.one("kubernetes:policy/v1:PodDisruptionBudget").inputs
    selector = {"app.kubernetes.io/name": "chat-api", "track": "stable"}
    for body in (deployment, service, pdb):
        assert body["metadata"]["name"] == "chat-api"
        assert body["metadata"]["namespace"] == "carepath-test"
    assert deployment["spec"]["selector"] == {"matchLabels": selector}
    assert deployment["spec"]["template"]["metadata"]["labels"] == {**selector, "app.kubernetes.io/version": "v2.0.0"}
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
        "prometheus.io/path": "/metrics",
    }
    assert service["spec"]["selector"] == selector
    assert pdb["spec"]["selector"] == {"matchLabels": selector}
    assert pdb["spec"]["maxUnavailable"] == 1
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"},
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP", "appProtocol": "http"},
    ]
    assert service["metadata"]["labels"]["carepath.io/metrics"] == "true"
    # the version label sits on the pods only, so a new tag touches the Deployment alone
    assert "app.kubernetes.io/version" not in service["metadata"]["labels"]


def test_rolling_update_from_config_and_the_provider_awaits_it(plan):
    deployment = plan.one("kubernetes:apps/v1:Deployment").inputs
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
    assert (spec["minReadySeconds"], spec["progressDeadlineSeconds"], spec["revisionHistoryLimit"]) == (20, 600, 10)
    assert "pulumi.com/skipAwait" not in deployment["metadata"].get("annotations", {})


def test_probes_resources_and_image(plan):
    pod = plan.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == IMAGE
    assert container["ports"] == [
        {"name": "http", "containerPort": 9000, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/ready", "port": "http"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def test_pods_meet_the_restricted_pod_security_standard(plan):
    pod = plan.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["readOnlyRootFilesystem"] is True
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"][0]["name"] == "tmp" and "emptyDir" in pod["volumes"][0]
    assert pod["automountServiceAccountToken"] is False
    assert not any(key in pod for key in ("hostNetwork", "hostPID", "hostIPC"))


def test_drains_outlast_the_alb_and_spread_over_zones(plan):
    pod = plan.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop > 30  # the deregistration delay given
    assert pod["terminationGracePeriodSeconds"] == pre_stop + 15
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_manifests_validate_strictly_for_the_cluster_version(plan):
    for resource in plan.managed:
        if resource.type.startswith("kubernetes:"):
            validate_builtin(resource)


def test_the_service_exists_before_the_pods(plan):
    deployment = plan.one("kubernetes:apps/v1:Deployment")
    assert plan.one("kubernetes:core/v1:Service").urn in deployment.options["dependsOn"]


def test_no_autoscaler_unless_enabled(plan):
    assert plan.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler") == []


def test_autoscaler_owns_the_replica_count_when_enabled(run_component):
    plan = build_track(run_component, track="canary", autoscaling=True)
    deployment = plan.one("kubernetes:apps/v1:Deployment")
    assert deployment.inputs["metadata"]["name"] == "chat-api-canary"
    assert "replicas" not in deployment.inputs["spec"]
    hpa = plan.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    assert hpa.inputs["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chat-api-canary"}
    assert (hpa.inputs["spec"]["minReplicas"], hpa.inputs["spec"]["maxReplicas"]) == (3, 9)
    validate_builtin(hpa)


def test_another_service_gets_its_own_names_and_selector(run_component):
    plan = build_track(run_component, service="triage-api", track="canary")
    selector = {"app.kubernetes.io/name": "triage-api", "track": "canary"}
    for kind in ("kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service", "kubernetes:policy/v1:PodDisruptionBudget"):
        assert plan.one(kind).inputs["metadata"]["name"] == "triage-api-canary"
    deployment = plan.one("kubernetes:apps/v1:Deployment").inputs["spec"]
    assert deployment["selector"] == {"matchLabels": selector}
    assert deployment["template"]["spec"]["containers"][0]["name"] == "triage-api"


def test_in_the_mesh_pods_ask_for_a_sidecar_that_outlives_the_drain(run_component):
    drain = drain_timings(30, 15)
    plan = build_track(run_component, track="canary", mesh=True)
    template = plan.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]
    assert template["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    proxy = json.loads(template["metadata"]["annotations"]["proxy.istio.io/config"])
    assert proxy["terminationDrainDuration"] == f"{drain.termination_grace_seconds}s"
    assert proxy["holdApplicationUntilProxyStarts"] is True
    validate_builtin(plan.one("kubernetes:apps/v1:Deployment"))


def test_without_the_mesh_pods_carry_no_sidecar_label(plan):
    labels = plan.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["metadata"]["labels"]
    assert "sidecar.istio.io/inject" not in labels


@pytest.fixture(scope="module")
def proxied(run_component):
    return build_track(run_component, tls_proxy=TlsProxy(image=PROXY_IMAGE))


def test_without_a_tls_proxy_the_pod_has_none(plan):
    pod = plan.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert "https" not in {port["name"] for port in plan.one("kubernetes:core/v1:Service").inputs["spec"]["ports"]}


def test_a_tls_proxy_is_a_native_sidecar_to_the_app_on_loopback(proxied):
    pod = proxied.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    [proxy] = pod["initContainers"]
    assert proxy["image"] == PROXY_IMAGE and proxy["restartPolicy"] == "Always"
    assert proxy["command"] == ["nginx", "-c", "/etc/nginx/carepath/nginx.conf", "-g", "daemon off;"]
    assert proxy["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    assert proxy["readinessProbe"]["tcpSocket"] == {"port": "https"}
    assert set(proxy["resources"]) == {"requests", "limits"}
    mounts = {m["mountPath"]: m["name"] for m in proxy["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/nginx/carepath"]]["configMap"] == {"name": "chat-api-tls-proxy"}
    assert volumes[mounts["/etc/nginx/tls"]]["secret"] == {"secretName": "chat-api-tls", "defaultMode": 0o440}
    for path in ("/tmp", "/var/cache/nginx"):
        assert "emptyDir" in volumes[mounts[path]]
    # The track's Service sends 443 to it: the TargetGroupBinding's port.
    https = {port["name"]: port for port in proxied.one("kubernetes:core/v1:Service").inputs["spec"]["ports"]}["https"]
    assert (https["port"], https["targetPort"], https["appProtocol"]) == (443, "https", "https")


def test_a_tls_proxy_keeps_the_pod_restricted_and_valid(proxied):
    deployment = proxied.one("kubernetes:apps/v1:Deployment")
    pod = deployment.inputs["spec"]["template"]["spec"]
    [proxy], [app] = pod["initContainers"], pod["containers"]
    assert proxy["securityContext"] == app["securityContext"]
    assert proxy["securityContext"]["readOnlyRootFilesystem"] is True and proxy["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    for resource in proxied.managed:
        if resource.type.startswith("kubernetes:"):
            validate_builtin(resource)


def test_the_proxys_config_map_holds_its_nginx_conf_to_the_apps_port(run_component):
    settings = service_settings()
    plan = run_component(lambda: tls_proxy_config_map("chat-api-tls-proxy", "chat-api", settings, "carepath-test", pulumi.ResourceOptions()))
    config_map = plan.one("kubernetes:core/v1:ConfigMap")
    assert config_map.inputs["metadata"] == {"name": "chat-api-tls-proxy", "namespace": "carepath-test"}
    conf = config_map.inputs["data"]["nginx.conf"]
    assert "listen 8443 ssl;" in conf and "server 127.0.0.1:9000;" in conf
    validate_builtin(config_map)
