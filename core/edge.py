"""The shared edge, as the services and their routers ask for it (pure).

- A `Backend` is a target group a router needs: what it forwards to, on which port, and how
  the ALB checks it. Routers declare theirs (`Router.backends`); two services that need the
  same backend (the mesh's ingress gateway) share its target group.
- Each service gets a listener rule on the production listener (and, with a test route, on
  the test listener) matching its `hosts` and `pathPrefix`; the service that names neither
  takes what no other rule matches. Priorities rank the rules by how specific they are (host
  and path, then host, then path, then the default: `ServiceSettings.entry_kind`), so a more
  specific service can take part of a broader one's requests (`/triage` on the host another
  service serves). Within a rank a priority comes from the service's name, so adding a service
  does not renumber the others (unless two names' hashes clash in a rank: the name later in
  order moves to the next free priority); the settings refuse services of one rank that match
  the same requests, whose order would be arbitrary.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Mapping, Optional

from core.settings import ServiceSettings

DEFAULT_PRIORITY = 50000  # the ALB's last priority: the default service's rule
_RANKS = {"host-and-path": 1, "host": 10001, "path": 20001}
_RANK_SIZE = 10000


@dataclass(frozen=True)
class Backend:
    """A target group: `name` is shared by the services that need the same one."""

    name: str
    port: int
    health_path: str
    health_port: Optional[int] = None  # unset: the traffic port


@dataclass(frozen=True)
class EntryRule:
    """Which requests of the shared edge are a service's: a listener rule's conditions."""

    priority: int
    hosts: tuple[str, ...]
    paths: tuple[str, ...]  # ALB path patterns

    def conditions(self) -> list[dict]:
        conditions: list[dict] = []
        if self.hosts:
            conditions.append({"host_header": {"values": list(self.hosts)}})
        conditions.append({"path_pattern": {"values": list(self.paths)}})
        return conditions


def entry_rules(services: Mapping[str, ServiceSettings]) -> dict[str, EntryRule]:
    """Each service's listener rule (settings allow one default service at most)."""
    rules: dict[str, EntryRule] = {}
    taken: set[int] = set()
    for name in sorted(services):
        service = services[name]
        kind = service.entry_kind
        prefix = service.path_prefix
        paths = (prefix, f"{prefix}/*") if prefix else ("/*",)
        if kind == "default":
            rules[name] = EntryRule(DEFAULT_PRIORITY, (), paths)
            continue
        offset = zlib.crc32(name.encode()) % _RANK_SIZE
        while _RANKS[kind] + offset in taken:  # a clash of two names' hashes: the later name moves on
            offset = (offset + 1) % _RANK_SIZE
        priority = _RANKS[kind] + offset
        taken.add(priority)
        rules[name] = EntryRule(priority, service.hosts, paths)
    return rules
