"""A stack's `carepath:` config as the settings take it: section name -> value. One reading for
every source of config: the Pulumi runtime (`program.raw_config`, values as JSON text) and the
stack file (`release.stackfile`, values as YAML decodes them)."""

from __future__ import annotations

import difflib
import json
from typing import Any, Callable, Collection, Mapping, Optional

from core.settings import NAMESPACE


def carepath_sections(
    config: Mapping[str, Any], decode: Callable[[Any], Any] = lambda value: value, providers: Optional[Mapping[str, Collection[str]]] = None
) -> dict[str, Any]:
    """The `carepath:` keys of `config` (`carepath:services` -> `services`), each value through
    `decode`; other namespaces' keys (`aws:region`) are left out, unknown `carepath:` keys kept
    (so the settings catch a typo), and so are, whole, the keys of a misspelled namespace
    (`carepth:services`), since Pulumi would hand them to no one, and the keys `providers`
    (namespace -> the keys its provider reads) does not know (`aws:regoin`), which the
    provider would ignore."""
    prefix = f"{NAMESPACE}:"
    sections = {key[len(prefix):]: decode(value) for key, value in config.items() if key.startswith(prefix)}
    return sections | {
        key: decode(value) for key, value in config.items() if misspelled_namespace(key.partition(":")[0]) or unknown_provider_key(key, providers or {})
    }


def unknown_provider_key(key: str, providers: Mapping[str, Collection[str]]) -> bool:
    """Whether `key` (`aws:regoin`) is in a provider's namespace but not one of its keys."""
    namespace, _, name = key.partition(":")
    return namespace in providers and name not in providers[namespace]


def misspelled_namespace(namespace: str) -> bool:
    """Whether a config namespace reads as a typo of `carepath` (`carepth`, `care-path`, `CarePath`)."""
    return namespace != NAMESPACE and difflib.SequenceMatcher(None, namespace.lower(), NAMESPACE).ratio() >= 0.8


def secret_paths(config: Mapping[str, Any]) -> frozenset[str]:
    """The `carepath:` keys of every value the stack file stores encrypted (`{secure: ...}`), as
    `--path` keys (`carepath:secrets: {slackUrl: {secure: ...}}` -> `secrets.slackUrl`): which
    values are encrypted, where the Pulumi runtime tells only which sections hold one (the
    release driver's `settings_of` reads them so)."""

    def walk(value: Any, path: str) -> list[str]:
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            return [path]
        if isinstance(value, Mapping):
            return [found for key, item in value.items() for found in walk(item, f"{path}.{key}")]
        if isinstance(value, list):
            return [found for index, item in enumerate(value) for found in walk(item, f"{path}[{index}]")]
        return []

    return frozenset(found for section, value in carepath_sections(config).items() for found in walk(value, section))


def runtime_value(text: Any) -> Any:
    """A value as the Pulumi runtime hands it over: JSON for structured and typed values, plain
    text for strings."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def config_path(key: str) -> list[str]:
    """A `--path` key as the stack file's keys: `services.chat-api.tag` -> [`carepath:services`,
    `chat-api`, `tag`]; a key with its own namespace (`aws:region`) keeps it."""
    namespace, _, path = key.rpartition(":")
    top, *rest = path.split(".")
    return [f"{namespace or NAMESPACE}:{top}", *rest]
