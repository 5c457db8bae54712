"""The shared edge, as the services and their routers ask for it (pure).

- A `Backend` is a target group a router needs: what it forwards to, on which port, and how
  the ALB checks it. The ALB reaches every backend over TLS (`TARGET_PROTOCOL`): the pods' TLS
  proxy or the mesh's gateways. Routers declare theirs (`Router.backends`); two services that need the
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
from core.settings.rules import TLS_PROXY_PORT

DEFAULT_PRIORITY = 50000  # the ALB's last priority: the default service's rule
_RANKS = {"host-and-path": 1, "host": 10001, "path": 20001}
_RANK_SIZE = 10000


TARGET_PROTOCOL = "HTTPS"
TLS_SERVICE_PORT = 443  # a proxied track's Service port to the proxy (the TargetGroupBinding's)
TLS_PROXY_DIR = "/etc/nginx/tls"  # the pod's certificate, `tls.crt` and `tls.key`
# ECDSA keys (cert-manager's, `components.certificates`) with AEAD ciphers only; TLS 1.3 brings its own.
TLS_CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"


def tls_proxy_config(app_port: int) -> str:
    """nginx.conf of the pod's TLS proxy: TLS 1.2 and 1.3 on `TLS_PROXY_PORT`, to the app on
    loopback. It runs as the pod's non-root user on a read-only root: everything it writes is
    under /tmp. Answers stream through unbuffered (an LLM writes them token by token); the
    ALB's idle timeout, not the proxy's, bounds a quiet connection."""
    temp_paths = "\n".join(f"    {kind}_temp_path /tmp/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""worker_processes 1;
pid /tmp/nginx.pid;
error_log /dev/stderr warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;  # the ALB and the app log requests
    server_tokens off;
{temp_paths}
    upstream app {{
        server 127.0.0.1:{app_port};
        keepalive 16;
    }}
    server {{
        listen {TLS_PROXY_PORT} ssl;
        ssl_certificate {TLS_PROXY_DIR}/tls.crt;
        ssl_certificate_key {TLS_PROXY_DIR}/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {TLS_CIPHERS};
        ssl_prefer_server_ciphers on;
        ssl_session_cache shared:tls:1m;
        client_max_body_size 0;  # the app sets its own limits
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}
    }}
}}
"""


@dataclass(frozen=True)
class Backend:
    """A target group: `name` is shared by the services that need the same one."""

    name: str
    port: int
    health_path: str
    health_port: Optional[int] = None  # unset: the traffic port

    @property
    def health_protocol(self) -> str:
        """TLS on the traffic port; a port of its own is a status port (the mesh gateways'
        15021), which speaks plain HTTP and carries no request."""
        return "HTTP" if self.health_port else TARGET_PROTOCOL


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
