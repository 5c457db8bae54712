"""A stack file (`Pulumi.<stack>.yaml`), read and rewritten as the release driver's one write.

Every action of the driver changes all its keys in one rewrite of the file: the new text is
written beside it, flushed, and renamed over it, so an interruption leaves the old file or the
new one, never a mix. The rewrite keeps the file's comments, key order and encrypted values
(ruamel.yaml's round trip); the Pulumi CLI and the Automation API read the same file. It is
read as the offline plan reads it, strictly (`offline.stack_yaml`): refused, with its line and
column, where Pulumi would read a value otherwise.

Drivers of two services can write one stack file at once: each rewrite reads the file, applies
its changes and renames the result over it under an exclusive lock (`flock` on the file's
directory: the file itself is replaced, so a lock on it would not outlive a rewrite), so
neither loses the other's keys.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from components.routers.factory import TRAITS
from core.paths import UNSET, set_path
from core.settings import NAMESPACE, Settings, parse
from core.stack_config import carepath_sections, config_path, parse_path, secret_paths
from offline import stack_yaml
from program import provider_keys

SECRET_PLACEHOLDER = "[secret]"


def settings_of(config: Mapping[str, Any], stack: str) -> Settings:
    """A stack file's `carepath:` config as settings. Which values the file stores encrypted
    (`pulumi config set --secret`, `{secure: ...}`) is read from it by `secret_paths`; they parse
    as placeholders, so each secret is checked on its own: one stored in plain text is refused
    by name."""
    encrypted = secret_paths({f"{NAMESPACE}:{section}": value for section, value in config.items()})
    return parse(_plain(config, opened=True), stack, encrypted, routers=TRAITS, providers=provider_keys())


def apply_changes(config: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`config` (section -> value) with `changes` (`services.chat-api.rollout.canary.weight` -> 25,
    or UNSET)."""
    result = _plain(config)
    for path, value in changes.items():
        set_path(result, parse_path(path), value)
    return result


def _plain(value: Any, opened: bool = False) -> Any:
    """ruamel's round-trip containers as plain dicts and lists; each `{secure: ...}` without its
    ciphertext (the driver never needs a secret's value): `{secure: [secret]}`, which still
    tells an encrypted value from a plain one, or, `opened`, the placeholder alone."""
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER if opened else {"secure": SECRET_PLACEHOLDER}
        return {str(k): _plain(v, opened) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, opened) for v in value]
    return value


def _round_trip() -> YAML:
    """A parser and emitter of its own for each use: ruamel's are not thread-safe (the driver
    and a rehearsal's synthetic service read one stack file from two threads)."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


class StackFile:
    def __init__(self, path: Path):
        self.path = path

    def _load(self) -> Any:
        """The document as ruamel's round trip holds it, once the strict reader has accepted the
        text (StackFileError otherwise): the values it holds are then the ones Pulumi reads."""
        text = stack_yaml.read_text(self.path)
        stack_yaml.parse(text, self.path)
        return _round_trip().load(text) or {}

    def config(self) -> dict[str, Any]:
        """The `carepath:` sections: section name -> value as Pulumi reads it (and, whole, a
        provider's unknown keys, for the settings to refuse); StackFileError when the strict
        reader refuses the file."""
        return carepath_sections(stack_yaml.stack_config(self.path), _plain, provider_keys())

    def write(self, changes: Mapping[str, Any]) -> None:
        """Apply every change (`services.chat-api.rollout.canary.weight` -> 25, or UNSET) in one
        atomic rewrite, read and written under the file's lock."""
        with exclusive_lock(self.path.parent):
            self._rewrite(changes)

    def _rewrite(self, changes: Mapping[str, Any]) -> None:
        document = self._load()
        config = document.setdefault("config", {})
        keys = {path: config_path(path) for path in changes}
        # Every mapping a change lands in, outermost first (a section, then a service, ...).
        around = sorted({tuple(parts[:depth]) for parts in keys.values() for depth in range(1, len(parts))}, key=len)
        trailing = {at: _detach_trailing(node) for at in around if (node := _node(config, at)) is not None}
        for path, value in changes.items():
            set_path(config, keys[path], value if value is UNSET else _commented(value), CommentedMap)
        for at, comment in reversed(trailing.items()):  # innermost first: its lines come before its parent's
            node = _node(config, at)
            if comment and node is not None:
                _attach_trailing(node, comment)
        buffer = io.StringIO()
        _round_trip().dump(document, buffer)
        replace_atomically(self.path, buffer.getvalue())


# ruamel keeps the comment lines above a key on the entry before it: for a section's first key, on
# the deepest last entry of the previous section (for a service's, of the previous service). Adding
# or removing that mapping's last keys would move or drop those lines, so a write lifts them off
# every mapping it changes and puts them back on its new last entry.


def _node(config: Any, keys: tuple[str | int, ...]) -> Optional[CommentedMap]:
    """The mapping at `keys` (None: absent, or not a mapping)."""
    node = config
    for key in keys:
        node = node.get(key) if isinstance(node, CommentedMap) else None
    return node if isinstance(node, CommentedMap) else None


def _commented(value: Any) -> Any:
    """A new mapping as ruamel's own, so comments can sit on its entries; a string that would
    not read back as itself unquoted (`on`, `1:30`: ruamel, a YAML 1.2 writer, leaves them
    plain) in quotes, so the strict reader takes what the driver writes."""
    if isinstance(value, Mapping):
        return CommentedMap((key, _commented(item)) for key, item in value.items())
    if isinstance(value, list):
        return [_commented(item) for item in value]
    if isinstance(value, str) and not stack_yaml.reads_as_text(value):
        return DoubleQuotedScalarString(value)
    return value


def _last_entry(node: Any) -> Optional[tuple[CommentedMap, Any]]:
    while isinstance(node, CommentedMap) and node:
        key = next(reversed(node))
        if isinstance(node[key], CommentedMap) and node[key]:
            node = node[key]
            continue
        return node, key
    return None


def _detach_trailing(section: Any) -> str:
    """The comment lines after a mapping's last entry, taken off it ("" when none)."""
    found = _last_entry(section)
    tokens = found[0].ca.items.get(found[1]) if found else None
    if not tokens or len(tokens) < 3 or tokens[2] is None:
        return ""
    end_of_line, newline, following = tokens[2].value.partition("\n")
    if not following:
        return ""
    if end_of_line.strip():
        tokens[2].value = end_of_line + newline
    else:
        tokens[2] = None
    return following


def _attach_trailing(section: Any, comment: str) -> None:
    found = _last_entry(section)
    if found is None:
        return
    tokens = found[0].ca.items.setdefault(found[1], [None, None, None, None])
    if tokens[2] is None:
        tokens[2] = CommentToken("\n" + comment, CommentMark(0), None)
    else:
        tokens[2].value += comment


@contextlib.contextmanager
def exclusive_lock(path: Path, wait: bool = True) -> Iterator[None]:
    """An exclusive `flock` on `path` (a directory, or a file created if absent) until the block
    ends; the system drops it if the process dies. Each call opens `path` anew, so threads of one
    process exclude each other as processes do. `wait=False`: BlockingIOError when it is held."""
    handle = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        yield
    finally:
        os.close(handle)


def replace_atomically(path: Path, text: str) -> None:
    """`path` holds `text` afterwards, or (interrupted) what it held before."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
