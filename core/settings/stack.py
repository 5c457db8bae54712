"""A stack's settings: every `carepath:` section parsed, every rule checked, every default
resolved, or a `SettingsError` listing every problem at once."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Collection, Mapping

from pydantic import TypeAdapter, ValidationError

from core.routers import RouterTraits
from core.settings.errors import SettingsError, format_error
from core.settings.fields import NAMESPACE, ServiceName
from core.settings.platform import ClusterSettings, EdgeSettings, MeshSettings, MonitoringSettings
from core.settings.rules import cross_section_problems, resolve_router, unused_section_warnings
from core.settings.service import ServiceSettings, repository_name

SECTIONS: dict[str, Any] = {
    "cluster": ClusterSettings,
    "services": dict[ServiceName, ServiceSettings],
    "edge": EdgeSettings,
    "mesh": MeshSettings,
    "monitoring": MonitoringSettings,
    "secrets": dict[str, str],  # values only through `pulumi config set --secret --path secrets.<name>`
}
REQUIRED = ("services",)
_ADAPTERS = {key: TypeAdapter(hint) for key, hint in SECTIONS.items()}


class UnknownService(ValueError):
    """A service the stack does not have."""


@dataclass(frozen=True)
class Settings:
    """One stack's settings, after every rule passed and every default resolved. `services` are
    in name order; `routers` holds each service's router (its traits)."""

    stack: str
    cluster: ClusterSettings
    edge: EdgeSettings
    mesh: MeshSettings
    monitoring: MonitoringSettings
    services: Mapping[str, ServiceSettings]
    routers: Mapping[str, RouterTraits]
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    # What parses but a reviewer would question (each with its full key and why); the program and
    # both CLIs print them, none stops a deploy. They say how the config is written, not what it
    # means, so two configs of the same meaning compare equal.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def service(self, name: str) -> ServiceSettings:
        if name not in self.services:
            raise UnknownService(f"stack {self.stack} has no service {name!r} (its services: {', '.join(self.services)})")
        return self.services[name]

    def repository(self, name: str) -> str:
        return repository_name(name, self.service(name))

    @property
    def namespace(self) -> str:
        return f"carepath-{self.stack}"

    @property
    def cluster_name(self) -> str:
        return self.cluster.name or f"carepath-{self.stack}"

    @property
    def mesh_enabled(self) -> bool:
        """`mesh.enabled`, or, when unset, whether a service's router needs the mesh."""
        return self.mesh.enabled if self.mesh.enabled is not None else any(t.mesh for t in self.routers.values())

    @property
    def gateway_api(self) -> bool:
        """Whether a service's router needs the Gateway API."""
        return any(t.gateway_api for t in self.routers.values())


def _validate(key: str, value: Any, problems: list[str]) -> Any:
    """`value` as section `key`, or None with its problems added to `problems`."""
    try:
        return _ADAPTERS[key].validate_json(json.dumps(value), by_alias=True, by_name=False)
    except ValidationError as error:
        problems += [format_error(key, SECTIONS[key], e) for e in error.errors()]
        return None


def _plaintext_secrets(secrets: Any, secret_keys: frozenset[str]) -> list[str]:
    """Each value of `secrets` not stored encrypted, named by its key, never by its value.

    `secret_keys` may name single values (`secrets.slackUrl`, as `core.stack_config.secret_paths`
    reads them from the stack file): then each value is checked on its own. The Pulumi runtime
    marks only whole sections (`secrets` is encrypted as soon as one value in it is): given only
    that, one encrypted value vouches for the section, so callers that can read the stack file
    pass the values' keys."""
    if not isinstance(secrets, dict) or not secrets:
        return []
    by_value = any(key.startswith("secrets.") for key in secret_keys)
    if not by_value and "secrets" in secret_keys:
        return []
    return [
        f"{NAMESPACE}:secrets.{name}: set in plain text; use `pulumi config set --secret --path secrets.{name} <value>`"
        for name in secrets
        if f"secrets.{name}" not in secret_keys
    ]


def parse(
    raw: Mapping[str, Any],
    stack: str,
    secret_keys: frozenset[str] = frozenset(),
    *,
    routers: Mapping[str, RouterTraits],
    providers: Mapping[str, Collection[str]] = MappingProxyType({}),
) -> Settings:
    """Validate a stack's `carepath:` config; `raw` maps section names to decoded JSON values,
    `secret_keys` names what is stored encrypted: sections (`secrets`) or single values
    (`secrets.slackUrl`); `routers` the routers there are; `providers` the keys each provider
    namespace has (`aws` -> `region`, ...), which the shell reads from the installed packages."""
    problems: list[str] = []
    for key in sorted(set(raw) - set(SECTIONS)):
        namespace, colon, section = key.partition(":")
        if colon and namespace in providers:  # a provider's unknown key, kept whole by `core.stack_config.carepath_sections`
            hint = difflib.get_close_matches(section, providers[namespace], n=1)
            meant = f"; did you mean {namespace}:{hint[0]}?" if hint else f" (its keys: {', '.join(sorted(providers[namespace]))})"
            problems.append(f"{key}: unknown key of the {namespace} provider{meant}")
            continue
        if colon:  # a misspelled namespace's key, kept whole by `core.stack_config.carepath_sections`
            hint = difflib.get_close_matches(section, SECTIONS, n=1)
            meant = f"; did you mean '{NAMESPACE}:{hint[0]}'?" if hint else ""
            problems.append(f"{key}: unknown namespace '{namespace}'{meant} (this program reads {NAMESPACE}: keys)")
            continue
        hint = difflib.get_close_matches(key, SECTIONS, n=1)
        did_you_mean = f"; did you mean '{NAMESPACE}:{hint[0]}'?" if hint else ""
        problems.append(f"{NAMESPACE}:{key}: unknown key{did_you_mean} (allowed: {', '.join(SECTIONS)})")

    parsed: dict[str, Any] = {}
    for key in SECTIONS:
        value = raw.get(key)
        if value is None:
            if key in REQUIRED:
                problems.append(f"{NAMESPACE}:{key} is required: at least one service (`services.chat-api.rollout.strategy: rolling`)")
                continue
            value = {}
        if key == "services" and isinstance(value, dict):
            if not value:
                problems.append(f"{NAMESPACE}:services is empty: name at least one service (`services.chat-api.rollout.strategy: rolling`)")
                continue
            # Each service on its own, so one service's error leaves the others' rules, and the
            # rules across services (over those that parsed), to run. In name order, as `Settings`.
            parsed[key] = {}
            for name in sorted(value, key=str):
                parsed[key].update(_validate(key, {name: value[name]}, problems) or {})
        else:
            section = _validate(key, value, problems)
            if section is not None:
                parsed[key] = section
    problems += cross_section_problems(parsed, routers, stack)
    problems += _plaintext_secrets(raw.get("secrets"), secret_keys)
    if problems:
        raise SettingsError(problems)

    services: dict[str, ServiceSettings] = parsed["services"]
    return Settings(
        stack=stack,
        cluster=parsed["cluster"],
        edge=parsed["edge"],
        mesh=parsed["mesh"],
        monitoring=parsed["monitoring"],
        services=services,
        routers={name: routers[resolve_router(service, parsed["mesh"])] for name, service in services.items()},
        secrets=parsed["secrets"],
        warnings=tuple(unused_section_warnings(raw["services"], services)),
    )
