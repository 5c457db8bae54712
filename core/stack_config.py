"""A stack's `carepath:` config as the settings take it: section name -> value. One reading for
every source of config: the Pulumi runtime (`program.raw_config`, values as JSON text) and the
stack file (`release.stackfile`, values as YAML decodes them)."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Callable, Collection, Mapping, Optional

from core.paths import PathError
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


def config_path(key: str) -> list[str | int]:
    """A `--path` key as the stack file's keys: `services.chat-api.tag` -> [`carepath:services`,
    `chat-api`, `tag`], `monitoring.receivers[0].name` -> [..., `receivers`, 0, `name`]; a key
    with its own namespace (`aws:region`) keeps it."""
    namespace, colon, path = key.partition(":")
    if not (colon and re.fullmatch(r"[A-Za-z0-9_-]+", namespace)):  # a colon inside a quoted name is no namespace
        namespace, path = NAMESPACE, key
    top, *rest = parse_path(path)
    return [f"{namespace}:{top}", *rest]


_QUOTED = re.compile(r'\["((?:[^"\\]|\\.)*)"\]')
_INDEX = re.compile(r"\[(-?[0-9]+)\]")
_NAME = re.compile(r'[^.\[\]"]+')


def parse_path(path: str) -> list[str | int]:
    """A `--path` key's parts, read as `pulumi config set --path` reads them: names separated by
    `.`, `[2]` an index into a list, `["key.with.dots"]` a name that may hold any character
    (`\\"` a quote). PathError for anything else: an empty name, a negative or non-numeric
    index, an unbalanced bracket or quote, or a key that starts with an index."""
    parts: list[str | int] = []
    at = 0
    while at < len(path):
        if at and path[at] == ".":  # a dot may come before a bracket too, as in Pulumi's `["a.b"].["c"]`
            at += 1
        match = _QUOTED.match(path, at) or _INDEX.match(path, at) or _NAME.match(path, at)
        if match is None:
            raise PathError(f"{_unreadable(path[at:])} at character {at + 1}")
        if match.re is _QUOTED:
            parts.append(re.sub(r"\\(.)", r"\1", match.group(1)))
        elif match.re is _INDEX:
            if int(match.group(1)) < 0:
                raise PathError(f"{match.group()} is a negative index; lists count from [0]")
            parts.append(int(match.group(1)))
        else:
            parts.append(match.group())
        at = match.end()
        if at < len(path) and path[at] not in ".[":
            raise PathError(f"{_unreadable(path[at:])} at character {at + 1}")
    if not parts:
        raise PathError("the key is empty")
    if isinstance(parts[0], int):
        raise PathError("a key starts with a name, not an index")
    return parts


def _unreadable(rest: str) -> str:
    """What is wrong where a path stops parsing."""
    if rest.startswith('["'):
        return "an unterminated quoted name (expected [\"name\"])"
    if rest.startswith("["):
        return "an unbalanced '[' or an index that is not a number (expected [0] or [\"name\"])"
    if rest.startswith("]"):
        return "an unbalanced ']'"
    if rest.startswith(".") or not rest:
        return "an empty name"
    return f"an unexpected {rest[0]!r}"


def split_words(text: str) -> list[str]:
    """`make`'s `SET`/`UNSET` as one word per assignment or key: split on spaces as a shell splits
    them (quotes group, and are dropped), except inside `[...]` and `{...}`, kept whole and as
    written, quotes included: `tag=v2 steps=[5, 50, 100] 'note=a b'` is three words, and JSON
    values and `["key.with.dots"]` keys reach the parsers intact. ValueError when a bracket or
    quote is left open."""
    words: list[str] = []
    word: list[str] = []
    started, depth, quote, escaped = False, 0, "", False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and depth:
                escaped = True
            elif char == quote:
                quote = ""
                if not depth:
                    continue
            word.append(char)
            continue
        if char in "'\"":
            quote, started = char, True
            if depth:
                word.append(char)
            continue
        if char.isspace() and not depth:
            if started:
                words.append("".join(word))
            word, started = [], False
            continue
        depth += 1 if char in "[{" else -1 if char in "]}" and depth else 0
        word.append(char)
        started = True
    if quote or depth:
        raise ValueError(f"{text}: {'a quote' if quote else 'a bracket'} is left open")
    return [*words, "".join(word)] if started else words
