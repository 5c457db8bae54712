"""How a bad config value is reported: one line per problem, naming the full key
(`carepath:services.triage-api.rollout.canary.weight`), the value (never a secret's) and what
is allowed."""

from __future__ import annotations

import difflib
import json
import typing
from dataclasses import fields, is_dataclass
from typing import Any, Mapping, Sequence

from pydantic.alias_generators import to_camel

from core.settings.fields import NAMESPACE
from core.settings.service import STRATEGIES


class SettingsError(ValueError):
    """Every problem found in a stack's config; `problems` holds one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid stack config ({count}):\n" + "\n".join(f"  - {p}" for p in problems))


_TYPE_NAMES = {
    "int_type": "an integer",
    "finite_number": "a finite number",
    "int_parsing": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "dataclass_type": "a mapping",
    "model_type": "a mapping",
}


def describe(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def _inner(hint: Any) -> Any:
    """What a hint holds under Optional[...] (the first argument that is not None)."""
    if typing.get_origin(hint) is typing.Union:
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _known_keys(section_hint: Any, path: Sequence[Any]) -> list[str]:
    """The camelCase keys allowed in the mapping at `path` inside a section: walks dataclass
    fields, the values of a name -> section mapping (`services`) and the items of a list."""
    hint = _inner(section_hint)
    for part in path:
        origin = typing.get_origin(hint)
        if origin is dict:
            hint = _inner(typing.get_args(hint)[1])
        elif origin is tuple:
            hint = _inner(typing.get_args(hint)[0])
        elif is_dataclass(hint):
            hints = {to_camel(name): h for name, h in typing.get_type_hints(hint, include_extras=False).items()}
            hint = _inner(hints.get(part))
        else:
            return []
    return [to_camel(f.name) for f in fields(hint)] if is_dataclass(hint) else []


def key_of(section: str, loc: Sequence[Any]) -> str:
    parts = tuple(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc)
    return f"{NAMESPACE}:" + ".".join((section, *parts)).replace(".[", "[")


def format_error(section: str, section_hint: Any, error: Mapping[str, Any]) -> str:
    """One pydantic error of `section` as a line."""
    loc: list[Any] = list(error["loc"])
    kind, value = error["type"], error.get("input")
    if len(loc) >= 2 and loc[-1] == "[key]":  # a mapping's key (a service name) failed its own rule
        loc, value = [*loc[:-2], loc[-2]], loc[-2]
    key = key_of(section, loc)
    if section == "secrets":
        value = "[secret]"  # never echo a secret
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        allowed = _known_keys(section_hint, loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
        return f"{key}: unknown key{did_you_mean} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        return f"{key} is required" + (": one of " + ", ".join(STRATEGIES) if key.endswith("rollout.strategy") else "")
    if kind == "literal_error":
        allowed = error["ctx"]["expected"].replace("'", "").replace(" or ", ", ")
        return f"{key}: {describe(value)} is not one of {allowed}"
    if kind in _TYPE_NAMES:
        return f"{key}: {describe(value)} is not {_TYPE_NAMES[kind]}"
    if kind == "carepath":
        return f"{key}: {describe(value)} {error['msg']}"
    return f"{key}: {describe(value)}: {error['msg']}"
