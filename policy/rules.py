"""The CarePath guardrails, as plain functions over resources (no Pulumi imports), so they
are tested like any code and the pack in `__main__.py` only wraps them.

A resource is its type token and its input properties (camelCase, as the engine and the
offline plan both see them). Resource rules return violation messages for one resource;
stack rules see every resource of the stack at once. The settings already refuse most
unsafe config; these rules are the second line, for whatever reaches a resource
another way (a new component, a hand edit, a provider default).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Optional, Sequence

Props = Mapping[str, Any]
PRODUCTION_STACKS = ("production",)
# Stacks that serve patients: no plain HTTP on their listeners, whatever their config says
# (as `core.settings.rules.PATIENT_FACING_STACKS`; other stacks may opt in by name).
PATIENT_FACING_STACKS = ("staging", *PRODUCTION_STACKS)
ECR_IMAGE = re.compile(
    r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/[a-z0-9][a-z0-9._/-]*"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
# The ports Istio's sidecar and gateways listen on (as `core.settings.rules.ISTIO_PORTS`).
ISTIO_PORTS = (15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090)
PUBLIC_PORTS = (80, 443)


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    props: Props


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    remediation: str
    enforcement: Literal["mandatory", "advisory"]
    resource: Callable[[str, Props, str], list[str]] | None = None  # (type, props, stack) -> violations
    stack: Callable[[Sequence[Resource], str], list[str]] | None = None  # (resources, stack) -> violations


def _containers(props: Props) -> list[Props]:
    return list(props.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []))


def _pod(props: Props) -> Props:
    return props.get("spec", {}).get("template", {}).get("spec", {})


def _name(resource: Resource) -> str:
    return resource.props.get("metadata", {}).get("name", resource.name)


def _place(resource: Resource) -> tuple[str, str]:
    """Where a Kubernetes object lives: (namespace, name). Names are unique per namespace only."""
    return resource.props.get("metadata", {}).get("namespace", ""), _name(resource)


def _of(resources: Sequence[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r.type == kind]


def pinned_ecr_images(kind: str, props: Props, stack: str) -> list[str]:
    if kind != DEPLOYMENT:
        return []
    problems = []
    for container in _containers(props):
        image = str(container.get("image", ""))
        match = ECR_IMAGE.fullmatch(image)
        if not match:
            problems.append(f"container {container.get('name')}: image {image!r} is not from an ECR repository")
        elif not (match["tag"] or match["digest"]):
            problems.append(f"container {container.get('name')}: image {image!r} has neither a tag nor a digest")
        elif (match["tag"] or "").lower() == "latest":
            problems.append(f"container {container.get('name')}: image {image!r} uses the moving tag latest")
    return problems


def probes_and_resources(kind: str, props: Props, stack: str) -> list[str]:
    if kind != DEPLOYMENT:
        return []
    problems = []
    for container in _containers(props):
        name = container.get("name")
        if "readinessProbe" not in container:
            problems.append(f"container {name}: no readinessProbe")
        resources = container.get("resources", {})
        for section in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(section, {}))
            if missing:
                problems.append(f"container {name}: no {section} for {', '.join(sorted(missing))}")
    return problems


def restricted_security_context(kind: str, props: Props, stack: str) -> list[str]:
    if kind != DEPLOYMENT:
        return []
    pod = _pod(props)
    pod_context = pod.get("securityContext", {})
    problems = []
    if any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC")):
        problems.append("the pod shares a host namespace")
    for container in _containers(props):
        context, name = container.get("securityContext", {}), container.get("name")
        if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
            problems.append(f"container {name}: runAsNonRoot is not set")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name}: allowPrivilegeEscalation is not false")
        if "ALL" not in context.get("capabilities", {}).get("drop", []):
            problems.append(f"container {name}: capabilities are not all dropped")
        seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"container {name}: no RuntimeDefault seccomp profile")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"container {name}: the root filesystem is writable")
    return problems


def _has(labels: Props, required: Props) -> bool:
    return all(labels.get(key) == value for key, value in required.items())


def _selects(selector: Props, labels: Props) -> bool:
    match = selector.get("matchLabels", {})
    return bool(match) and _has(labels, match)


def _scaled(resources: Sequence[Resource]) -> set[tuple[str, str]]:
    """The Deployments a HorizontalPodAutoscaler scales, as (namespace, name)."""
    return {(_place(r)[0], r.props.get("spec", {}).get("scaleTargetRef", {}).get("name")) for r in _of(resources, HPA)}


def production_deployment_safety(resources: Sequence[Resource], stack: str) -> list[str]:
    if stack not in PRODUCTION_STACKS:
        return []
    budgets = [(_place(r)[0], r.props.get("spec", {}).get("selector", {})) for r in _of(resources, PDB)]
    scaled = _scaled(resources)
    problems = []
    for deployment in _of(resources, DEPLOYMENT):
        spec, (namespace, name) = deployment.props.get("spec", {}), _place(deployment)
        if spec.get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable") not in (0, "0%"):
            problems.append(f"Deployment {name}: maxUnavailable must be 0 in production")
        replicas = spec.get("replicas")
        # an idle blue/green colour may be scaled to zero; anything serving needs two
        if (namespace, name) not in scaled and replicas is not None and 0 < replicas < 2:
            problems.append(f"Deployment {name}: {replicas} replica; production needs at least 2")
        labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
        if not any(where == namespace and _selects(selector, labels) for where, selector in budgets):
            problems.append(f"Deployment {name}: no PodDisruptionBudget selects its pods")
    return problems


class _Backends:
    """The stack's Services and the Deployments behind them: where a route's traffic lands."""

    def __init__(self, resources: Sequence[Resource]):
        self.services = {_place(r): r.props.get("spec", {}).get("selector") or {} for r in _of(resources, SERVICE)}
        self.deployments = [(_place(r)[0], r.props.get("spec", {})) for r in _of(resources, DEPLOYMENT)]

    def problem(self, namespace: str, service: str, weight: int, subset: Props) -> Optional[str]:
        """What is wrong with sending `weight` of a route to Service `service` (narrowed to a
        subset's labels): it must exist, and with traffic select pods of a Deployment with a
        replica or more (none set: Kubernetes runs one until its autoscaler takes over)."""
        selector = self.services.get((namespace, service))
        if selector is None:
            return f"{service} is no Service of the stack"
        wanted = {**selector, **subset}
        if weight > 0 and not any(
            where == namespace and spec.get("replicas", 1) >= 1 and _has(spec.get("template", {}).get("metadata", {}).get("labels", {}), wanted)
            for where, spec in self.deployments
        ):
            return f"{service} takes weight {weight} but no Deployment with a replica or more runs its pods"
        return None


def _service_of_host(host: str, namespace: str) -> tuple[str, str]:
    """A mesh host (`chat-api-mesh.carepath-staging.svc.cluster.local`, or a short name in the
    route's own namespace) as (namespace, Service)."""
    name, _, rest = host.partition(".")
    return (rest.partition(".")[0] or namespace), name


def _virtual_service_routes(resources: Sequence[Resource], backends: _Backends) -> list[str]:
    subsets: dict[str, dict[str, Props]] = {}
    for rule in _of(resources, DESTINATION_RULE):
        spec = rule.props.get("spec", {})
        subsets.setdefault(spec.get("host", ""), {}).update((s.get("name"), s.get("labels", {})) for s in spec.get("subsets", []))
    problems = []
    for service in _of(resources, VIRTUAL_SERVICE):
        namespace, name = _place(service)
        for route in service.props.get("spec", {}).get("http", []):
            where = f"VirtualService {name} route {route.get('name')}"
            destinations = route.get("route", [])
            weighted = [(d.get("destination", {}), d.get("weight", 100 if len(destinations) == 1 else 0)) for d in destinations]
            total = sum(weight for _, weight in weighted)
            if total != 100:
                problems.append(f"{where}: weights sum to {total}, not 100")
            for target, weight in [*weighted, *([(route["mirror"], 0)] if "mirror" in route else [])]:
                host, subset = target.get("host", ""), target.get("subset")
                if subset is not None and subset not in subsets.get(host, {}):
                    problems.append(f"{where}: subset {subset} is in no DestinationRule for {host}")
                    continue
                labels = subsets[host][subset] if subset is not None else {}
                problem = backends.problem(*_service_of_host(host, namespace), weight, labels)
                if problem:
                    problems.append(f"{where}: {problem}" + (f" (subset {subset})" if subset is not None else ""))
    return problems


def _http_routes(resources: Sequence[Resource], backends: _Backends) -> list[str]:
    problems = []
    for route in _of(resources, HTTP_ROUTE):
        namespace, name = _place(route)
        for index, rule in enumerate(route.props.get("spec", {}).get("rules", [])):
            where = f"HTTPRoute {name} rule {rule.get('name', index)}"
            refs = rule.get("backendRefs", [])
            # The Gateway API's default weight is 1; a lone backend takes everything.
            weighted = [(ref, ref.get("weight", 100 if len(refs) == 1 else 1)) for ref in refs]
            total = sum(weight for _, weight in weighted)
            if total != 100:
                problems.append(f"{where}: weights sum to {total}, not 100")
            mirrors = [f.get("requestMirror", {}).get("backendRef", {}) for f in rule.get("filters", []) if f.get("type") == "RequestMirror"]
            for ref, weight in [*weighted, *((mirror, 0) for mirror in mirrors)]:
                if (ref.get("group", ""), ref.get("kind", "Service")) != ("", "Service"):
                    problems.append(f"{where}: backend {ref.get('kind')} {ref.get('name')} is not a Service")
                    continue
                problem = backends.problem(ref.get("namespace", namespace), ref.get("name", ""), weight, {})
                if problem:
                    problems.append(f"{where}: {problem}")
    return problems


def weighted_routes(resources: Sequence[Resource], stack: str) -> list[str]:
    backends = _Backends(resources)
    return _virtual_service_routes(resources, backends) + _http_routes(resources, backends)


def ecr_immutable_and_scanned(kind: str, props: Props, stack: str) -> list[str]:
    if kind != "aws:ecr/repository:Repository":
        return []
    problems = []
    if props.get("imageTagMutability") != "IMMUTABLE":
        problems.append("image tags are mutable: a tag could point at another image after review")
    if props.get("imageScanningConfiguration", {}).get("scanOnPush") is not True:
        problems.append("images are not scanned on push")
    return problems


def eks_cluster_hardening(kind: str, props: Props, stack: str) -> list[str]:
    if kind != "eks:index:Cluster":
        return []
    problems = []
    if not props.get("enabledClusterLogTypes"):
        problems.append("control-plane logging is off")
    if not props.get("encryptionConfigKeyArn"):
        problems.append("Kubernetes secrets are not encrypted with a KMS key")
    if stack in PRODUCTION_STACKS and props.get("endpointPublicAccess", True):
        cidrs = props.get("publicAccessCidrs") or ["0.0.0.0/0"]  # EKS reads none as everyone
        if _open_to_everyone(cidrs):
            problems.append("the public API endpoint is open to the internet in production")
    return problems


def _open_to_everyone(cidrs: Sequence[str]) -> bool:
    """Whether the blocks admit every address: `::/0`, or IPv4 blocks that together cover the
    whole space (`0.0.0.0/1` and `128.0.0.0/1` do)."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except (TypeError, ValueError):  # not known yet in a preview, or not a block
            continue
    if any(n.version == 6 and n.prefixlen == 0 for n in networks):
        return True
    ipv4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    return ipaddress.IPv4Network("0.0.0.0/0") in ipaddress.collapse_addresses(ipv4)


def _ingress(kind: str, props: Props) -> list[tuple[int, int, list[str]]]:
    """A security group's ingress rules as (from port, to port, CIDRs), in either shape AWS has."""
    if kind == SECURITY_GROUP:
        return [(i.get("fromPort", 0), i.get("toPort", 65535), [*i.get("cidrBlocks", []), *i.get("ipv6CidrBlocks", [])]) for i in props.get("ingress") or []]
    if kind == INGRESS_RULE:
        cidrs = [c for c in (props.get("cidrIpv4"), props.get("cidrIpv6")) if c]
        return [(props.get("fromPort", 0), props.get("toPort", 65535), cidrs)]
    return []


def no_open_test_ports_in_production(kind: str, props: Props, stack: str) -> list[str]:
    if stack not in PRODUCTION_STACKS:
        return []
    return [
        f"ingress on port {low}{'' if low == high else f'-{high}'} is open to every address in production"
        for low, high, cidrs in _ingress(kind, props)
        if cidrs and not (low == high and low in PUBLIC_PORTS) and _open_to_everyone(cidrs)
    ]


def web_firewall_on_patient_facing_albs(resources: Sequence[Resource], stack: str) -> list[str]:
    """Each internet-facing ALB has a web ACL association. Counted, not matched by ARN: a new
    ALB's ARN is not known in a preview, so the association's `resourceArn` is not either."""
    if stack not in PATIENT_FACING_STACKS:
        return []
    public = [r for r in _of(resources, LOAD_BALANCER) if r.props.get("loadBalancerType", "application") == "application" and not r.props.get("internal")]
    if len(_of(resources, WAF_ASSOCIATION)) >= len(public):
        return []
    return [f"LoadBalancer {r.name}: no AWS WAF web ACL is associated on {stack}, which serves patients" for r in public]


def mesh_ports_free(kind: str, props: Props, stack: str) -> list[str]:
    if kind != DEPLOYMENT:
        return []
    return [
        f"container {container.get('name')} listens on {port['containerPort']}, a port Istio's sidecar takes"
        for container in _containers(props)
        for port in container.get("ports", [])
        if port.get("containerPort") in ISTIO_PORTS
    ]


def finite_alert_thresholds(kind: str, props: Props, stack: str) -> list[str]:
    if kind != PROMETHEUS_RULE:
        return []
    rules = [rule for group in props.get("spec", {}).get("groups", []) for rule in group.get("rules", [])]
    # Outside label matchers (`le="+Inf"` is a bucket's name): a NaN or Inf threshold never fires.
    return [
        f"rule {rule.get('alert') or rule.get('record')} compares with a NaN or infinite number"
        for rule in rules
        if re.search(r"(?i)\b(inf|nan)\b", re.sub(r'"[^"]*"', '""', str(rule.get("expr", ""))))
    ]


def _serves_plain_http(props: Props) -> bool:
    actions = props.get("defaultActions", [])
    redirects_only = actions and all(a.get("type") == "redirect" and a.get("redirect", {}).get("protocol") == "HTTPS" for a in actions)
    return props.get("protocol") != "HTTPS" and not redirects_only


def https_listeners_in_production(kind: str, props: Props, stack: str) -> list[str]:
    if kind != "aws:lb/listener:Listener" or stack not in PRODUCTION_STACKS or not _serves_plain_http(props):
        return []
    return [f"listener on port {props.get('port')} serves {props.get('protocol')} in production"]


def no_plain_http_for_patients(kind: str, props: Props, stack: str) -> list[str]:
    # Production's listeners are `https-listeners-in-production`'s: one violation, one rule.
    if kind != "aws:lb/listener:Listener" or stack not in PATIENT_FACING_STACKS or stack in PRODUCTION_STACKS or not _serves_plain_http(props):
        return []
    return [f"listener on port {props.get('port')} serves {props.get('protocol')} on {stack}, which serves patients"]


def autoscaler_present(resources: Sequence[Resource], stack: str) -> list[str]:
    scaled = _scaled(resources)
    places = [_place(r) for r in _of(resources, DEPLOYMENT)]
    return [f"Deployment {name} has no HorizontalPodAutoscaler" for namespace, name in places if (namespace, name) not in scaled]


def topology_spread(kind: str, props: Props, stack: str) -> list[str]:
    if kind != DEPLOYMENT or _pod(props).get("topologySpreadConstraints"):
        return []
    return ["pods are not spread over zones"]


# Remediations name a service's keys as `services.<name>...`: the service is the one whose
# resource the violation names (its Deployments, Services and routes start with its name).
RULES: tuple[Rule, ...] = (
    Rule("pinned-ecr-images", "Deployments run images from ECR, pinned by a tag (never latest) or a digest.",
         "Set services.<name>.tag (or the release's: services.<name>.rollout.canary.tag, services.<name>.rollout.blueGreen.<colour>.tag) "
         "to a released tag; services.<name>.pinDigest adds the digest.", "mandatory", resource=pinned_ecr_images),
    Rule("probes-and-resources", "Every container has a readiness probe and CPU and memory requests and limits.",
         "Render containers through the Track component, which sets both from services.<name> (healthPath, resources).", "mandatory", resource=probes_and_resources),
    Rule("restricted-security-context", "Pods meet the Kubernetes 'restricted' Pod Security Standard.",
         "Non-root, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp, read-only root filesystem.", "mandatory", resource=restricted_security_context),
    Rule("production-deployment-safety", "Production Deployments roll with maxUnavailable 0, run at least 2 replicas and have a PodDisruptionBudget.",
         "Keep services.<name>.rollout.rolling.maxUnavailable at 0 and services.<name>.replicas at 2 or more on production.", "mandatory", stack=production_deployment_safety),
    Rule("weighted-routes", "Every VirtualService and HTTPRoute route's weights sum to 100, every subset it names exists in a DestinationRule, "
         "and every backend Service it sends traffic to exists and runs pods (a Deployment with replicas >= 1).",
         "Change weights through services.<name>.rollout.canary.weight; the service's router (istio, gateway-api) keeps routes, subsets and tracks in step.",
         "mandatory", stack=weighted_routes),
    Rule("ecr-immutable-and-scanned", "ECR repositories have immutable tags and scan images on push.",
         "Use the Registry component, or set imageTagMutability IMMUTABLE and scanOnPush.", "mandatory", resource=ecr_immutable_and_scanned),
    Rule("eks-cluster-hardening", "EKS logs its control plane, encrypts secrets with KMS, and in production opens its public endpoint only to listed CIDRs.",
         "Use the Cluster component; on production set cluster.publicAccessCidrs or cluster.endpointPublicAccess false.", "mandatory", resource=eks_cluster_hardening),
    Rule("https-listeners-in-production", "Production ALB listeners serve HTTPS (plain HTTP only to redirect).",
         "Set edge.certificateArn on production.", "mandatory", resource=https_listeners_in_production),
    Rule("no-plain-http-for-patients", "On the patient-facing stacks other than production (staging), ALB listeners serve HTTPS "
         "(plain HTTP only to redirect); stacks that serve no patients may opt in to plain HTTP by name.",
         "Set edge.certificateArn and remove edge.allowPlainHttp.", "mandatory", resource=no_plain_http_for_patients),
    Rule("no-open-test-ports-in-production", "In production, no security group admits every address on a port other than the public listeners' 80 and 443.",
         "Set edge.testCidrs to the testers' and the pipeline's CIDRs on production.", "mandatory", resource=no_open_test_ports_in_production),
    Rule("web-firewall-on-patient-facing-albs", "On the stacks that serve patients (staging, production), every internet-facing ALB has AWS WAF "
         "(a web ACL association).", "Remove edge.waf.enabled: false; the Edge component associates the WebFirewall with its ALB.",
         "mandatory", stack=web_firewall_on_patient_facing_albs),
    Rule("mesh-ports-free", "No container listens on a port Istio's sidecar or gateway takes (15000-15090).",
         "Set services.<name>.port and services.<name>.metricsPort outside Istio's ports.", "mandatory", resource=mesh_ports_free),
    Rule("finite-alert-thresholds", "Alert and recording rules compare with finite numbers (a NaN or Inf threshold never fires).",
         "Set monitoring.thresholds and services.<name>.rollout.analysis.signals to finite numbers.", "mandatory", resource=finite_alert_thresholds),
    Rule("autoscaler-present", "Deployments have a HorizontalPodAutoscaler.", "Set services.<name>.autoscaling.enabled.", "advisory", stack=autoscaler_present),
    Rule("topology-spread", "Pods spread over availability zones.", "Render pods through the Track component.", "advisory", resource=topology_spread),
)


def evaluate(resources: Sequence[Resource], stack: str, enforcement: str | None = None) -> list[tuple[str, str, str]]:
    """Every violation as (rule, resource or stack, message); all rules, or those of one enforcement level."""
    found = []
    for rule in RULES:
        if enforcement and rule.enforcement != enforcement:
            continue
        if rule.resource:
            found += [(rule.name, r.name, message) for r in resources for message in rule.resource(r.type, r.props, stack)]
        if rule.stack:
            found += [(rule.name, stack, message) for message in rule.stack(resources, stack)]
    return found
