"""`--path`-style keys (`rollout.canary.weight`, `receivers[0].name`) in nested config: the one
implementation the offline overrides, the stack file's writes and the release actions share."""

from __future__ import annotations

from typing import Any, Callable, Mapping, MutableMapping, Sequence

UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()  # a change that removes its key


class PathError(ValueError):
    """A `--path` key that `pulumi config set --path` would refuse, or that cannot go where it points."""


def render_path(parts: Sequence[str | int]) -> str:
    """`[..., "receivers", 0, "name"]` as a key again: `receivers[0].name`."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts).lstrip(".")


def set_path(root: MutableMapping[str, Any], parts: Sequence[str | int], value: Any, new_mapping: Callable[[], MutableMapping[str, Any]] = dict) -> None:
    """`root[parts[0]]...[parts[-1]] = value`, creating the mappings (`new_mapping`) and lists on
    the way; an index may be a list's length, which appends (as `pulumi config set --path` does).
    `UNSET` removes the key or item, and creates nothing when its parents are absent. PathError
    when the path goes through a value of another kind or past a list's end."""
    node: Any = root
    for depth, part in enumerate(parts):
        _check(node, part, parts[:depth], removing=value is UNSET)
        if depth == len(parts) - 1:
            break
        child = _child(node, part)
        if child is None:
            if value is UNSET:
                return
            child = [] if isinstance(parts[depth + 1], int) else new_mapping()
            _put(node, part, child)
        node = child
    last = parts[-1]
    if value is not UNSET:
        _put(node, last, value)
    elif isinstance(node, list):
        if isinstance(last, int) and last < len(node):
            del node[last]
    else:
        node.pop(last, None)


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    return "a number" if isinstance(value, (int, float)) else "a string"


def _check(node: Any, part: str | int, before: Sequence[str | int], removing: bool) -> None:
    where = render_path(before)
    if isinstance(part, int):
        if not isinstance(node, list):
            raise PathError(f"{where} is {_kind(node)}, not a list: it has no index [{part}]")
        if part > len(node) and not removing:  # removing an absent item, like an absent key, changes nothing
            raise PathError(f"[{part}] is past the end of {where} ({len(node)} items): the next one is [{len(node)}]")
    elif not isinstance(node, Mapping):
        raise PathError(f"{where} is {_kind(node)}, not a mapping: it has no key {part!r}")


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, list):
        return node[part] if isinstance(part, int) and part < len(node) else None
    return node.get(part)


def _put(node: Any, part: str | int, value: Any) -> None:
    if isinstance(node, list) and part == len(node):
        node.append(value)
        return
    container: Any = node  # a mapping, or a list with `part` an index inside it (`_check`)
    container[part] = value
