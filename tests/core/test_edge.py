"""Each service's rule on the shared ALB: priorities ranked by how specific the rule is, stable as
services come and go, and conditions the ALB accepts (property tests, no mocks)."""

from __future__ import annotations

import itertools
from typing import Optional

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.edge import DEFAULT_PRIORITY, Backend, EntryRule, entry_rules, tls_proxy_config
from core.settings import RolloutSettings, ServiceSettings, SettingsError
from tests.conftest import one_service, settings_from

SPECIFICITY = ("host-and-path", "host", "path", "default")  # the order the edge tries them in
ROLLOUT = RolloutSettings(strategy="rolling")
service_names = st.from_regex(r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?", fullmatch=True)
host_names = st.lists(st.sampled_from(["chat.example.org", "triage.example.org", "db.example.org", "api.example.com"]), min_size=1, max_size=3, unique=True)
path_prefixes = st.sampled_from(["/triage", "/db", "/v1/chat", "/v1"])


def entry(hosts: tuple[str, ...] = (), path_prefix: Optional[str] = None) -> ServiceSettings:
    return ServiceSettings(rollout=ROLLOUT, hosts=hosts, path_prefix=path_prefix)


@st.composite
def entries(draw) -> ServiceSettings:
    """A service that is not the default: hosts, a path prefix, or both."""
    kind = draw(st.sampled_from(SPECIFICITY[:3]))
    hosts = tuple(draw(host_names)) if kind != "path" else ()
    return entry(hosts, draw(path_prefixes) if kind != "host" else None)


@st.composite
def stacks(draw, min_size: int = 0) -> dict[str, ServiceSettings]:
    """Services by name, one of them (at most) the default, as the settings allow."""
    services = draw(st.dictionaries(service_names, entries(), min_size=min_size, max_size=12))
    default = draw(st.one_of(st.none(), service_names.filter(lambda name: name not in services)))
    return {**services, **({default: entry()} if default else {})}


def alone(name: str, service: ServiceSettings) -> int:
    """A service's priority with no other service: the one its name and kind give it."""
    return entry_rules({name: service})[name].priority


@given(stacks())
def test_priorities_are_unique_and_within_the_albs_range(services):
    priorities = [rule.priority for rule in entry_rules(services).values()]
    assert len(priorities) == len(set(priorities))
    assert all(1 <= priority <= 50000 for priority in priorities)


@given(stacks())
def test_the_default_service_is_tried_last_on_every_path(services):
    for name, rule in entry_rules(services).items():
        is_default = services[name].entry_kind == "default"
        assert (rule.priority == DEFAULT_PRIORITY == 50000) is is_default
        if is_default:
            assert rule.conditions() == [{"path_pattern": {"values": ["/*"]}}]


@given(stacks())
def test_more_specific_rules_come_first(services):
    rules = entry_rules(services)
    for first, second in itertools.permutations(services, 2):
        if SPECIFICITY.index(services[first].entry_kind) < SPECIFICITY.index(services[second].entry_kind):
            assert rules[first].priority < rules[second].priority, (services[first].entry_kind, services[second].entry_kind)


@given(stacks(), service_names, entries())
def test_adding_a_service_renumbers_no_other_unless_their_names_take_one_priority(services, name, added):
    assume(name not in services)
    bigger = {**services, name: added}
    slots = [alone(other, service) for other, service in bigger.items()]
    if len(slots) == len(set(slots)):  # no two names of one kind take the same priority
        after = entry_rules(bigger)
        assert {other: after[other] for other in services} == entry_rules(services)
        assert after[name].priority == alone(name, added)


def colliding_names() -> tuple[str, str]:
    """Two service names that take one priority in a rank, in name order."""
    seen: dict[int, str] = {}
    for number in range(10_000):
        name = f"service-{number}"
        priority = alone(name, entry(("chat.example.org",)))
        if priority in seen:
            first, second = sorted((seen[priority], name))
            return first, second
        seen[priority] = name
    raise AssertionError("no two names share a priority")


def test_when_two_names_take_one_priority_the_later_name_moves_on():
    first, second = colliding_names()
    host = entry(("chat.example.org",))
    bystander = {"triage-api": entry(("triage.example.org",)), "chat-api": entry()}
    with_first, with_second = entry_rules({**bystander, first: host}), entry_rules({**bystander, second: host})
    both = entry_rules({**bystander, first: host, second: host})
    assert both[first] == with_first[first], "the first in name order keeps its priority, whichever came first"
    assert both[second].priority != with_second[second].priority == with_first[first].priority
    assert both[second].priority == with_first[first].priority + 1, "the next free one"
    assert all(both[name] == with_first[name] == with_second[name] for name in bystander), "no other service moves"


@pytest.mark.parametrize(
    "hosts, path_prefix, conditions",
    [
        ((), None, [{"path_pattern": {"values": ["/*"]}}]),
        (("chat.example.org",), None, [{"host_header": {"values": ["chat.example.org"]}}, {"path_pattern": {"values": ["/*"]}}]),
        ((), "/triage", [{"path_pattern": {"values": ["/triage", "/triage/*"]}}]),
        (
            ("chat.example.org", "chat.example.com"),
            "/v1/triage",
            [{"host_header": {"values": ["chat.example.org", "chat.example.com"]}}, {"path_pattern": {"values": ["/v1/triage", "/v1/triage/*"]}}],
        ),
    ],
)
def test_a_rule_matches_its_hosts_and_the_prefix_with_everything_under_it(hosts, path_prefix, conditions):
    rule = entry_rules({"chat-api": entry(hosts, path_prefix)})["chat-api"]
    assert (rule.hosts, rule.conditions()) == (hosts, conditions)


def test_conditions_are_host_then_path():
    assert EntryRule(1, ("a.example.org",), ("/x", "/x/*")).conditions() == [
        {"host_header": {"values": ["a.example.org"]}},
        {"path_pattern": {"values": ["/x", "/x/*"]}},
    ]


@given(st.lists(st.sampled_from([f"h{n}.example.org" for n in range(6)]), max_size=6, unique=True), st.one_of(st.none(), path_prefixes))
def test_the_settings_keep_every_rule_within_the_albs_5_condition_values(hosts, path_prefix):
    raw = one_service({"tag": "v1.4.0", "hosts": hosts, "rollout": {"strategy": "rolling"}, **({"pathPrefix": path_prefix} if path_prefix else {})})
    try:
        settings = settings_from(raw)
    except SettingsError:
        assert len(hosts) > 3
        return
    rule = entry_rules(settings.services)["chat-api"]
    assert sum(len(condition[kind]["values"]) for condition in rule.conditions() for kind in condition) <= 5


def test_backends_are_checked_over_tls_unless_on_a_status_port():
    assert Backend("chat-api-stable", 8443, "/healthz").health_protocol == "HTTPS"
    assert Backend("gateway", 443, "/healthz/ready", 15021).health_protocol == "HTTP"


def test_the_tls_proxy_speaks_tls_1_2_and_up_with_aead_ciphers_to_the_app_on_loopback():
    conf = tls_proxy_config(9000)
    directives = {line.strip().split(" ", 1)[0]: line.strip().split(" ", 1)[1] for line in conf.splitlines() if line.strip().endswith(";")}
    assert directives["ssl_protocols"] == "TLSv1.2 TLSv1.3;"
    ciphers = directives["ssl_ciphers"].rstrip(";").split(":")
    assert ciphers and all(c.startswith("ECDHE-ECDSA-") and ("GCM" in c or "POLY1305" in c) for c in ciphers)
    assert "listen 8443 ssl;" in conf and "server 127.0.0.1:9000;" in conf
    assert directives["ssl_certificate"] == "/etc/nginx/tls/tls.crt;" and directives["ssl_certificate_key"] == "/etc/nginx/tls/tls.key;"
    # Non-root on a read-only root: everything nginx writes is under /tmp.
    written = [value for key, value in directives.items() if key == "pid" or key.endswith("_temp_path")]
    assert len(written) == 6 and all(value.startswith("/tmp/") for value in written)
    assert directives["proxy_buffering"] == "off;", "answers stream token by token"
