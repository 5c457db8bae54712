"""Rules that span keys: within a service, across services (their routers and their entries on
the shared edge), and between the platform's sections. Each runs on the sections that parsed,
so a typo in one never hides an error in another."""

from __future__ import annotations

import difflib
import ipaddress
import json
from dataclasses import fields
from typing import Any, Mapping, Optional

from pydantic.alias_generators import to_camel

from core.quantity import parse_quantity
from core.routers import RouterTraits, default_router
from core.settings.fields import NAMESPACE
from core.settings.platform import ClusterSettings, EdgeSettings, MeshSettings, MonitoringSettings
from core.settings.service import COLOURS, RolloutSettings, ServiceSettings, SignalSettings, repository_name
from core.signals import catalogue

PRODUCTION_STACKS = ("production",)
# Stacks that serve patients: their public listener is HTTPS only, whatever the stack file says
# (`policy.rules.PLAIN_HTTP_STACKS` names the others, which may opt in to plain HTTP).
PATIENT_FACING_STACKS = ("staging", *PRODUCTION_STACKS)
# The ports Istio's sidecar and gateways listen on (docs: "Ports used by Istio"); refused whether
# or not the mesh is on today, so turning it on never collides with a service.
ISTIO_PORTS = (15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090)
# The pod's TLS proxy for the ALB (alb router: `core.edge.tls_proxy_config`); refused for every
# service, so a change of router never collides with one.
TLS_PROXY_PORT = 8443


def service_key(name: str, path: str = "") -> str:
    return f"{NAMESPACE}:services.{name}" + (f".{path}" if path else "")


def resolve_router(service: ServiceSettings, mesh: Optional[MeshSettings]) -> str:
    return service.router or default_router(service.rollout.strategy, mesh.enabled if mesh else None)


def is_production(stack: str) -> bool:
    """Whether the production rules apply: by the stack's name, as the policy pack decides it
    (`policy.rules.PRODUCTION_STACKS`), so the two lines agree and no toggle can opt out."""
    return stack in PRODUCTION_STACKS


def cross_section_problems(parsed: Mapping[str, Any], routers: Mapping[str, RouterTraits], stack: str) -> list[str]:
    problems: list[str] = []
    production = is_production(stack)
    cluster: Optional[ClusterSettings] = parsed.get("cluster")
    if cluster is not None:
        problems += _cluster_problems(cluster, production)
    services: Optional[Mapping[str, ServiceSettings]] = parsed.get("services")
    edge: Optional[EdgeSettings] = parsed.get("edge")
    mesh: Optional[MeshSettings] = parsed.get("mesh")
    if edge is not None:
        problems += _edge_problems(edge, production)
    if production and edge is not None and edge.certificate_arn is None:
        problems.append(f"{NAMESPACE}:edge.certificateArn is required on production: it serves HTTPS only (an ACM certificate ARN)")
    if edge is not None:
        problems += _plain_http_problems(edge, stack)
    if edge is not None and edge.test_port in (80, 443):
        problems.append(f"{NAMESPACE}:edge.testPort: {edge.test_port} is taken by the production listener; use another port")
    # The policy pack's `web-firewall-on-patient-facing-albs` is the second line.
    if edge is not None and not edge.waf.enabled and stack in PATIENT_FACING_STACKS:
        problems.append(
            f"{NAMESPACE}:edge.waf.enabled: false is refused on {stack}, which serves patients "
            f"({', '.join(PATIENT_FACING_STACKS)} keep AWS WAF on the ALB): remove the key"
        )
    if services is not None:
        for name, service in services.items():
            problems += _service_problems(name, service)
            if production:
                problems += _production_service_problems(name, service)
            problems += _router_problems(name, service, mesh, routers)
            problems += _promotion_problems(name, service, stack)
            if edge is not None and service.rollout.strategy == "blue-green" and not edge.test_cidrs:
                problems.append(
                    f"{NAMESPACE}:edge.testCidrs is required for blue-green ({service_key(name, 'rollout.strategy')}): the CIDRs "
                    "(testers, CI) that may reach the test listener on edge.testPort"
                )
        problems += _name_problems(services)
        problems += _call_problems(services)
        problems += _entry_problems(services, mesh, routers)
    monitoring: Optional[MonitoringSettings] = parsed.get("monitoring")
    secrets: Optional[dict[str, str]] = parsed.get("secrets")
    if monitoring is not None and secrets is not None:
        for index, receiver in enumerate(monitoring.receivers):
            if receiver.secret not in secrets:
                problems.append(
                    f"{NAMESPACE}:monitoring.receivers[{index}].secret: {receiver.secret!r} is not set; "
                    f"`pulumi config set --secret --path secrets.{receiver.secret} <url or key>`"
                )
    return problems


def _covers_everyone(cidrs: tuple[str, ...]) -> bool:
    """Whether the blocks together cover every IPv4 address (`0.0.0.0/1` and `128.0.0.0/1` do)."""
    networks = [ipaddress.IPv4Network(cidr) for cidr in cidrs]
    return ipaddress.IPv4Network("0.0.0.0/0") in ipaddress.collapse_addresses(networks)


def _open_to_everyone(key: str, cidrs: tuple[str, ...], what: str) -> list[str]:
    if not _covers_everyone(cidrs):
        return []
    covers = "together cover" if len(cidrs) > 1 else "covers"
    return [f"{NAMESPACE}:{key}: {json.dumps(list(cidrs))} {covers} every IPv4 address; on production {what}"]


def _edge_problems(edge: EdgeSettings, production: bool) -> list[str]:
    problems: list[str] = []
    if not edge.allowed_cidrs:
        problems.append(f"{NAMESPACE}:edge.allowedCidrs: [] is empty: the public listeners would admit no one (0.0.0.0/0 is everyone)")
    if production:
        problems += _open_to_everyone("edge.testCidrs", edge.test_cidrs, "the test listener is open only to the testers' and the pipeline's CIDRs")
    return problems


def _plain_http_problems(edge: EdgeSettings, stack: str) -> list[str]:
    """Plain HTTP on the internet only by a named opt-in, and never where patients are."""
    patient_facing = stack in PATIENT_FACING_STACKS
    if edge.allow_plain_http and patient_facing:
        return [
            f"{NAMESPACE}:edge.allowPlainHttp: true is refused on {stack}, which serves patients "
            f"({', '.join(PATIENT_FACING_STACKS)} serve HTTPS only): remove it and set edge.certificateArn to an ACM certificate ARN"
        ]
    # Production's own rule (above) already asks for the certificate.
    if edge.certificate_arn is None and not edge.allow_plain_http and stack not in PRODUCTION_STACKS:
        allowed = "" if patient_facing else f", or on this {stack} stack opt in to plain HTTP with edge.allowPlainHttp: true"
        return [f"{NAMESPACE}:edge.certificateArn is required: the public listener would serve plain HTTP; set an ACM certificate ARN{allowed}"]
    return []


def _cluster_problems(cluster: ClusterSettings, production: bool) -> list[str]:
    problems: list[str] = []
    if cluster.endpoint_public_access and not cluster.public_access_cidrs:
        problems.append(
            f"{NAMESPACE}:cluster.publicAccessCidrs: [] is empty, which EKS reads as 0.0.0.0/0: list the CIDRs that may reach "
            "the public API endpoint, or set cluster.endpointPublicAccess false"
        )
    if production and cluster.endpoint_public_access:
        problems += _open_to_everyone(
            "cluster.publicAccessCidrs",
            cluster.public_access_cidrs,
            "the public API endpoint is open only to the operators' and the pipeline's CIDRs (or set cluster.endpointPublicAccess false)",
        )
    if not cluster.min_nodes <= cluster.desired_nodes <= cluster.max_nodes:
        problems.append(
            f"{NAMESPACE}:cluster: node sizes must satisfy minNodes <= desiredNodes <= maxNodes, "
            f"got minNodes={cluster.min_nodes}, desiredNodes={cluster.desired_nodes}, maxNodes={cluster.max_nodes}"
        )
    if cluster.vpc_id is None and (cluster.public_subnet_ids or cluster.private_subnet_ids):
        problems.append(f"{NAMESPACE}:cluster.vpcId is required when subnet ids are given (they must belong to it)")
    if cluster.vpc_id is not None:
        for key, ids in (("publicSubnetIds", cluster.public_subnet_ids), ("privateSubnetIds", cluster.private_subnet_ids)):
            if len(ids) < 2:
                problems.append(
                    f"{NAMESPACE}:cluster.{key}: {json.dumps(list(ids))} must list at least 2 subnets "
                    "in different availability zones when cluster.vpcId reuses a VPC"
                )
    return problems


def _call_problems(services: Mapping[str, ServiceSettings]) -> list[str]:
    """`calls` opens the network from a service's pods to another's (`core.network_policy`):
    it must name another service of the stack, once."""
    problems: list[str] = []
    for name, service in services.items():
        others = [other for other in services if other != name]
        for index, callee in enumerate(service.calls):
            key = service_key(name, f"calls[{index}]")
            if callee == name:
                problems.append(f"{key}: {callee!r} is the service itself; list the other services it calls")
            elif callee not in services:
                hint = difflib.get_close_matches(callee, others, n=1)
                also = f"; did you mean {hint[0]!r}?" if hint else ""
                problems.append(f"{key}: {callee!r} is not a service of this stack (its others: {', '.join(others) or 'none'}){also}")
            elif callee in service.calls[:index]:
                problems.append(f"{key}: {callee!r} is listed twice")
    return problems


def _name_problems(services: Mapping[str, ServiceSettings]) -> list[str]:
    """Names two services' objects would share: the objects of a service are named after it
    (`chat-api-canary`, `chat-api-mesh`), and each creates its own ECR repository."""
    problems: list[str] = []
    for name in services:
        longer = [other for other in services if other.startswith(f"{name}-")]
        problems += [
            f"{service_key(other)}: begins with '{name}-', as the names of {name}'s own objects do ({name}-canary, {name}-blue, "
            f"{name}-mesh): the two services' objects could take one name; rename one of them"
            for other in longer
        ]
    created: dict[str, str] = {}
    for name, service in services.items():
        repository = repository_name(name, service)
        if repository in created and (service.create_repository or services[created[repository]].create_repository):
            problems.append(
                f"{service_key(name, 'repository')}: {repository!r} is {created[repository]}'s repository too, and the stack creates it: "
                "give each service its own (services share only an existing repository, createRepository: false on both)"
            )
        created.setdefault(repository, name)
    return problems


def _router_problems(name: str, service: ServiceSettings, mesh: Optional[MeshSettings], routers: Mapping[str, RouterTraits]) -> list[str]:
    router = resolve_router(service, mesh)
    traits = routers.get(router)
    if traits is None:
        return [f"{service_key(name, 'router')}: {router!r} is not one of {', '.join(routers)}"]
    problems: list[str] = []
    strategy = service.rollout.strategy
    if strategy not in traits.strategies:
        able = [other for other, t in routers.items() if strategy in t.strategies]
        problems.append(
            f"{service_key(name, 'router')}: {router!r} does not carry out the {strategy} strategy "
            f"({router}: {', '.join(traits.strategies)}; {strategy}: {', '.join(able)})"
        )
    if traits.mesh and mesh is not None and mesh.enabled is False:
        chosen = f"is {router!r}" if service.router else f"defaults to {router!r} for the {strategy} strategy"
        problems.append(f"{NAMESPACE}:mesh.enabled: false, but {service_key(name, 'router')} {chosen}, which routes in the Istio mesh")
    if traits.match_limit is not None and traits.route_matches is not None:
        # Only the mirror's paths grow the route: each is matched once per read method, and again
        # by each rule that matches headers alone (the tester header, the pins).
        count = traits.route_matches(service)
        if count > traits.match_limit:
            mirror = service.rollout.canary.mirror
            paths = len(mirror.paths) if mirror is not None else 0
            sticky = "with" if service.rollout.canary.stickiness else "without"
            problems.append(
                f"{service_key(name, 'rollout.canary.mirror.paths')}: {paths} paths {sticky} stickiness make {count} matches in the "
                f"{router} router's route while a canary is in flight, above its limit of {traits.match_limit}: list fewer paths "
                "(a `/x/*` path covers every path under /x)"
            )
    return problems


def _entry_problems(services: Mapping[str, ServiceSettings], mesh: Optional[MeshSettings], routers: Mapping[str, RouterTraits]) -> list[str]:
    """Each request on the shared edge belongs to one service: the edge tries the most specific
    kind of rule first (host and path, host, path, the default), so services of different kinds
    may overlap; two of one kind must not, since their order would be arbitrary."""
    problems: list[str] = []
    names = list(services)
    defaults = [name for name in names if services[name].entry_kind == "default"]
    for name in defaults[1:]:
        problems.append(
            f"{service_key(name)}: names neither hosts nor pathPrefix, nor does {defaults[0]}; only one service can take the "
            "requests no other service's hosts or path prefix match: give the others hosts or a pathPrefix"
        )
    overlapping: set[tuple[str, str]] = set()
    for index, first in enumerate(names):
        for second in names[index + 1 :]:
            a, b = services[first], services[second]
            if a.entry_kind == "default" or a.entry_kind != b.entry_kind:
                continue
            shared = sorted(set(a.hosts) & set(b.hosts)) if a.hosts else ["(any host)"]
            if shared and _prefixes_overlap(a.path_prefix, b.path_prefix):
                overlapping.add((first, second))
                problems.append(
                    f"{service_key(second)}: its hosts and pathPrefix ({b.path_prefix or '/'}) overlap {first}'s "
                    f"({a.path_prefix or '/'}) on {', '.join(shared)}: a request must belong to one service"
                )
    by_router: dict[str, list[str]] = {}
    for name, service in services.items():
        by_router.setdefault(resolve_router(service, mesh), []).append(name)
    for router, names_on_it in by_router.items():
        traits = routers.get(router)
        if traits is None or traits.path_routing:
            continue
        owner: dict[str, str] = {}
        for name in names_on_it:
            service = services[name]
            if service.entry_kind == "path":
                problems.append(
                    f"{service_key(name, 'pathPrefix')}: {service.path_prefix!r} on the edge's default host, but the {router} router "
                    "tells services apart by host only: give the service hosts of its own, or another router"
                )
            for host in service.hosts:
                if host in owner and (owner[host], name) not in overlapping:
                    problems.append(
                        f"{service_key(name, 'hosts')}: {host!r} is also {owner[host]}'s, and the {router} router tells services apart "
                        "by host only: give each its own hosts, or route one with another router"
                    )
                owner.setdefault(host, name)
    return problems


def _prefixes_overlap(a: Optional[str], b: Optional[str]) -> bool:
    """Whether two path prefixes (None: every path) can match one request's path."""
    if a is None or b is None:
        return True
    shorter, longer = sorted((a, b), key=len)
    return longer == shorter or longer.startswith(shorter + "/")


def _service_problems(name: str, service: ServiceSettings) -> list[str]:
    problems: list[str] = []
    requests, limits = service.resources.requests, service.resources.limits
    for resource in ("cpu", "memory"):
        request, limit = getattr(requests, resource), getattr(limits, resource)
        if parse_quantity(limit) < parse_quantity(request):
            problems.append(f"{service_key(name, f'resources.limits.{resource}')}: {limit!r} is below the request {request!r}")
    scaling = service.autoscaling
    if scaling.min_replicas > scaling.max_replicas:
        problems.append(f"{service_key(name, 'autoscaling')}: minReplicas {scaling.min_replicas} is above maxReplicas {scaling.max_replicas}")
    if len(set(service.hosts)) < len(service.hosts):
        problems.append(f"{service_key(name, 'hosts')}: {json.dumps(list(service.hosts))} lists a host name twice")
    if len(service.hosts) > 3:
        problems.append(f"{service_key(name, 'hosts')}: {len(service.hosts)} host names; an ALB rule matches at most 3 besides the path (list 3 or fewer)")
    for key in ("port", "metrics_port"):
        port = getattr(service, key)
        if port in ISTIO_PORTS:
            problems.append(
                f"{service_key(name, to_camel(key))}: {port} is one of the ports Istio's sidecar and gateway take "
                f"({', '.join(map(str, ISTIO_PORTS))}); choose another"
            )
    if service.metrics_port == service.port:
        problems.append(f"{service_key(name, 'metricsPort')}: {service.metrics_port} is {service_key(name, 'port')}; metrics need a port of their own")
    for key in ("port", "metrics_port"):
        if getattr(service, key) == TLS_PROXY_PORT:
            problems.append(f"{service_key(name, to_camel(key))}: {TLS_PROXY_PORT} is the port of the pods' TLS proxy for the ALB; choose another")
    rollout = service.rollout
    problems += _rollout_problems(name, rollout)
    idle = rollout.blue_green.idle_replicas
    if idle is not None and service.autoscaling.enabled:
        problems.append(
            f"{service_key(name, 'rollout.blueGreen.idleReplicas')}: {idle} cannot apply while {service_key(name, 'autoscaling')} is enabled "
            "(the autoscaler owns the replica count)"
        )
    if idle is not None and idle > service.replicas:
        problems.append(f"{service_key(name, 'rollout.blueGreen.idleReplicas')}: {idle} is above {service_key(name, 'replicas')} ({service.replicas})")
    if rollout.strategy in ("rolling", "canary") and service.tag is None:
        problems.append(f"{service_key(name, 'tag')} is required: the {rollout.strategy} strategy deploys it as the stable version")
    candidates = candidate_tags(service)
    if rollout.in_flight is not None and rollout.in_flight.tag not in candidates:
        problems.append(
            f"{service_key(name, 'rollout.inFlight.tag')}: {rollout.in_flight.tag!r} is not deployed by the {rollout.strategy} strategy's "
            f"config ({', '.join(sorted(filter(None, candidates))) or 'no candidate'}); the release record names the version its tracks run"
        )
    if rollout.strategy == "canary" and rollout.canary.tag is not None and rollout.canary.tag == service.tag:
        problems.append(
            f"{service_key(name, 'rollout.canary.tag')}: {rollout.canary.tag!r} is already the stable {service_key(name, 'tag')}; "
            "a canary must be a different version (promotion sets the tag and removes canary.tag)"
        )
    return problems


def _promotion_problems(name: str, service: ServiceSettings, stack: str) -> list[str]:
    """What a stage of the service's promotion path cannot mean on this stack; the path across
    stacks is `core.promotion`'s to check."""
    promotion = service.promotion
    if promotion is None:
        return []
    problems: list[str] = []
    if promotion.after == stack:
        problems.append(
            f"{service_key(name, 'promotion.after')}: {stack!r} is this stack itself; name the stage this one takes tags from, "
            "or remove the key on the first stage"
        )
    if promotion.verify is not None and service.rollout.strategy == "rolling":
        problems.append(
            f"{service_key(name, 'promotion.verify')}: a rolling release has no way to reach the candidate before patients "
            f"(no tester header, no test listener): use canary or blue-green on this stack ({service_key(name, 'rollout.strategy')}), "
            "or drop verify"
        )
    names = [window.name for window in promotion.freeze]
    for index, window in enumerate(promotion.freeze):
        if window.name in names[:index]:
            problems.append(f"{service_key(name, f'promotion.freeze[{index}].name')}: {window.name!r} is listed twice; give each window its own name")
    approvers = promotion.approval.approvers
    for index, approver in enumerate(approvers):
        if approver in approvers[:index]:
            problems.append(f"{service_key(name, f'promotion.approval.approvers[{index}]')}: {approver!r} is listed twice")
    return problems


def _production_service_problems(name: str, service: ServiceSettings) -> list[str]:
    """What the policy pack's production-deployment-safety rule would stop, refused first here."""
    problems: list[str] = []
    key, floor = ("autoscaling.minReplicas", service.autoscaling.min_replicas) if service.autoscaling.enabled else ("replicas", service.replicas)
    if floor < 2:
        problems.append(f"{service_key(name, key)}: {floor} on production; at least 2, so losing a node or a pod never leaves the service without one")
    unavailable = service.rollout.rolling.max_unavailable
    if unavailable not in (0, "0%"):
        problems.append(
            f"{service_key(name, 'rollout.rolling.maxUnavailable')}: {json.dumps(unavailable)} on production must be 0: "
            "a rollout keeps every serving pod until its replacement is ready"
        )
    return problems


def _rollout_problems(name: str, rollout: RolloutSettings) -> list[str]:
    problems: list[str] = []
    rolling = rollout.rolling
    if rolling.max_surge in (0, "0%") and rolling.max_unavailable in (0, "0%"):
        problems.append(f"{service_key(name, 'rollout.rolling')}: maxSurge and maxUnavailable are both 0, so a rollout could never progress")
    canary = rollout.canary
    if canary.weight > 0 and canary.tag is None:
        problems.append(
            f"{service_key(name, 'rollout.canary.weight')}: {canary.weight} needs {service_key(name, 'rollout.canary.tag')} "
            "(no canary in flight means no tag and weight 0)"
        )
    problems += _signal_problems(name, rollout.analysis.signals)
    blue_green = rollout.blue_green
    if blue_green.green_weight is not None and blue_green.idle_replicas is not None:
        problems.append(
            f"{service_key(name, 'rollout.blueGreen.greenWeight')}: {blue_green.green_weight} splits production traffic over both "
            f"colours, so both must run at full size: unset {service_key(name, 'rollout.blueGreen.idleReplicas')}"
        )
    if rollout.strategy == "blue-green":
        for colour in COLOURS:
            if getattr(blue_green, colour).tag is None:
                problems.append(f"{service_key(name, f'rollout.blueGreen.{colour}.tag')} is required: the blue-green strategy runs both colours")
    return problems


def candidate_tags(service: ServiceSettings) -> set[Optional[str]]:
    """The tags a release in flight can be running, by strategy."""
    rollout = service.rollout
    if rollout.strategy == "canary":
        return {rollout.canary.tag}
    if rollout.strategy == "blue-green":
        return {rollout.blue_green.blue.tag, rollout.blue_green.green.tag}
    return {service.tag}


_NEW_SIGNAL_NEEDS = {"ratio": ("numerator", "denominator"), "distribution": ("query",), "gauge": ("query",), "count": ("query", "bound")}


def _signal_problems(name: str, entries: tuple[SignalSettings, ...]) -> list[str]:
    """What a signal entry cannot mean, checked against the service's default catalogue."""
    problems: list[str] = []
    defaults = {s.name: s for s in catalogue(name)}
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        key = service_key(name, f"rollout.analysis.signals[{index}]")
        if entry.name in seen:
            problems.append(f"{key}.name: {entry.name!r} is listed twice; merge the two entries")
        seen.add(entry.name)
        if not entry.enabled:
            if entry.name not in defaults:
                problems.append(f"{key}.enabled: false, but {entry.name!r} is not a default signal (defaults: {', '.join(defaults)})")
            continue
        set_fields = {f.name: getattr(entry, f.name) for f in fields(entry) if getattr(entry, f.name) is not None}
        base = defaults.get(entry.name)
        kind = entry.kind or (base.kind if base else None)
        if base is None:
            hint = difflib.get_close_matches(entry.name, defaults, n=1)
            missing = [camel for camel in ("kind", "summary", "unit") if camel not in set_fields]
            missing += [to_camel(q) for q in _NEW_SIGNAL_NEEDS.get(kind or "", ()) if q not in set_fields]
            if missing:
                also = f" (or did you mean the default {hint[0]!r}?)" if hint else ""
                problems.append(f"{key}: a new signal {entry.name!r} needs {', '.join(missing)}{also}")
        elif entry.kind is not None and entry.kind != base.kind:
            problems.append(f"{key}.kind: {entry.kind!r} changes the kind of the default {entry.name!r} ({base.kind}); add a new signal instead")
        merged_good = entry.good if entry.good is not None else (base.good if base else 1.0)
        merged_bad = entry.bad if entry.bad is not None else (base.bad if base else 2.0)
        if merged_good >= merged_bad:
            problems.append(f"{key}: good {merged_good:g} must be below bad {merged_bad:g} (both are factors on the reference's share)")
        judged = entry.judged or (base.judged if base else "relative")
        bound = entry.bound if entry.bound is not None else (base.bound if base else None)
        if judged in ("absolute", "both") and bound is None:
            problems.append(f"{key}.bound is required: the signal is judged {judged!r}")
        if judged != "relative" and kind == "distribution":
            problems.append(f"{key}.judged: {judged!r} is not available for distributions; they are judged against the reference")
        if kind == "count" and judged != "absolute":
            problems.append(f"{key}.judged: counts are judged 'absolute' (against bound), not {judged!r}")
        if kind == "ratio" and bound is not None and bound >= 1:
            problems.append(f"{key}.bound: {bound:g} is not a share between 0 and 1")
    return problems


# The sections of `rollout` that one strategy alone reads (`core.release.plan_release`, the routers,
# `core.actions`); not `rolling`: the Deployments of every strategy update by it.
STRATEGY_SECTIONS = {"canary": "canary", "blueGreen": "blue-green"}


def unused_section_warnings(raw_services: Any, services: Mapping[str, ServiceSettings]) -> list[str]:
    """Keys set in another strategy's section (`rollout.canary` on a rolling service), which have
    no effect: warned of, not refused, so a team can prepare its next strategy's keys."""
    warnings: list[str] = []
    for name, service in services.items():
        rollout = raw_services[name]["rollout"]  # parsed, so a mapping with a strategy
        strategy = service.rollout.strategy
        for section, reader in STRATEGY_SECTIONS.items():
            keys = rollout.get(section)
            if reader != strategy and isinstance(keys, Mapping) and keys:
                warnings.append(
                    f"{service_key(name, f'rollout.{section}')} ({', '.join(map(str, keys))}): no effect on the {strategy} strategy, "
                    f"which reads none of it; it applies with {service_key(name, 'rollout.strategy')}: {reader}"
                )
    return warnings
