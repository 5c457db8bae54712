"""`--path`-style keys (`rollout.canary.weight`) in nested config: the one implementation the
offline overrides, the stack file's writes and the release actions share."""

from __future__ import annotations

from typing import Any, Callable, MutableMapping, Sequence

UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()  # a change that removes its key


def set_path(root: MutableMapping[str, Any], parts: Sequence[str], value: Any, new_mapping: Callable[[], MutableMapping[str, Any]] = dict) -> None:
    """`root[parts[0]]...[parts[-1]] = value`, creating the mappings on the way (`new_mapping`);
    `UNSET` removes the key, and creates nothing when its parents are absent."""
    node = root
    for part in parts[:-1]:
        if part not in node:
            if value is UNSET:
                return
            node[part] = new_mapping()
        node = node[part]
    if value is UNSET:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
