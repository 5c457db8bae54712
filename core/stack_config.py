"""A stack's `carepath:` config as the settings take it: section name -> value. One reading for
every source of config: the Pulumi runtime (`program.raw_config`, values as JSON text) and the
stack file (`release.stackfile`, values as YAML decodes them)."""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from core.settings import NAMESPACE


def carepath_sections(config: Mapping[str, Any], decode: Callable[[Any], Any] = lambda value: value) -> dict[str, Any]:
    """The `carepath:` keys of `config` (`carepath:services` -> `services`), each value through
    `decode`; other namespaces' keys (`aws:region`) are left out, unknown `carepath:` keys kept
    (so the settings catch a typo)."""
    prefix = f"{NAMESPACE}:"
    return {key[len(prefix):]: decode(value) for key, value in config.items() if key.startswith(prefix)}


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
