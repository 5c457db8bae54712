"""Stack files (`Pulumi.<stack>.yaml`) read strictly: as the Pulumi CLI reads them, or refused.

Three YAML readers meet a stack file: the Pulumi CLI's (go-yaml v3), PyYAML (YAML 1.1: the
offline plan) and ruamel.yaml (YAML 1.2: the release driver's rewrites). They disagree on some
unquoted values: `on` is true to YAML 1.1 and the text to the others, `1:30` is 90 to YAML 1.1,
`1e3` the text to YAML 1.1 and 1000.0 to the others, `010` is 8 to go-yaml and PyYAML and 10 to
YAML 1.2, a date is a date to the Python readers and the text to Pulumi. A plan would then show
one value and `pulumi up` deploy another, so every unquoted value is read as PyYAML and as go-yaml
read it, and refused where the two differ or where it has a leading zero. A duplicated key
(PyYAML keeps the last one, Pulumi refuses the file) and a syntax error are refused too. Every
refusal is one `StackFileError`: the file, line and column, the key, and what to write instead.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Optional

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

CORE = "tag:yaml.org,2002:"
# What a config value can be: Pulumi's config holds strings, numbers, booleans, null, lists and mappings.
VALUE_TAGS = frozenset(CORE + name for name in ("str", "int", "float", "bool", "null", "seq", "map"))
MERGE = CORE + "merge"


class StackFileError(Exception):
    """A stack file that cannot be read as the Pulumi CLI reads it: `file:line:column: problem`."""

    def __init__(self, path: Path, problem: str, line: Optional[int] = None, column: Optional[int] = None):
        super().__init__(path, problem, line, column)
        self.path, self.problem, self.line, self.column = path, problem, line, column

    def __str__(self) -> str:
        where = "".join(f":{at}" for at in (self.line, self.column) if at is not None)
        return f"{_shown(self.path)}{where}: {self.problem}"


def _shown(path: Path) -> str:
    """The path as typed from here: relative under the working directory, else absolute."""
    absolute = path.absolute()
    return str(absolute.relative_to(Path.cwd())) if absolute.is_relative_to(Path.cwd()) else str(absolute)


def stack_config(path: Path) -> dict[str, Any]:
    """The `config:` mapping of the stack file at `path`, key -> value (StackFileError: refused)."""
    return dict(parse(read_text(path), path).get("config") or {})


def read_text(path: Path) -> str:
    """The file's text; a missing, unreadable or non-UTF-8 file is a StackFileError."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StackFileError(path, "no such stack file") from None
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        raise StackFileError(path, f"not UTF-8 text (byte {error.object[error.start]:#04x})", line) from None
    except OSError as error:
        raise StackFileError(path, error.strerror or str(error)) from None


def parse(text: str, path: Path) -> dict[str, Any]:
    """The document of a stack file's `text` (`path` names it in errors), checked: a mapping
    whose `config` is a mapping, no key twice in one mapping, and no unquoted value that Pulumi
    reads otherwise than PyYAML does."""
    try:
        return _document(text)
    except _Refused as refused:
        raise StackFileError(path, refused.problem, refused.mark.line + 1, refused.mark.column + 1) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "not YAML"
        if error.context and error.problem and error.context_mark is not None:
            problem += f" ({error.context} at line {error.context_mark.line + 1})"
        raise StackFileError(path, problem, *((mark.line + 1, mark.column + 1) if mark else ())) from None
    except yaml.reader.ReaderError as error:
        line = text[: error.position].count("\n") + 1
        column = error.position - text.rfind("\n", 0, error.position)
        raise StackFileError(path, f"unacceptable character #x{error.character:04x}", line, column) from None


def _document(text: str) -> dict[str, Any]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return {}
        _check_shape(root)
        _check(root, "", {})
        return loader.construct_document(root)
    finally:
        loader.dispose()


def reads_as_text(text: str) -> bool:
    """Whether `text`, written unquoted, reads back as that text to PyYAML and to Pulumi (the
    release driver quotes every string that would not)."""
    return _implicit_tag(text) == CORE + "str" and pulumi_reading(text) == text


class _Refused(Exception):
    def __init__(self, mark: yaml.Mark, problem: str):
        self.mark, self.problem = mark, problem


def _check_shape(root: Node) -> None:
    if not isinstance(root, MappingNode):
        raise _Refused(root.start_mark, f"a stack file is a mapping (config: ...), not {_kind(root)}")
    for key, value in root.value:
        if isinstance(key, ScalarNode) and key.value == "config" and not isinstance(value, MappingNode) and value.tag != CORE + "null":
            raise _Refused(value.start_mark, f"config: a mapping of keys to values, not {_kind(value)}")


def _kind(node: Node) -> str:
    return "a list" if isinstance(node, SequenceNode) else "a mapping" if isinstance(node, MappingNode) else f"the value {node.value!r}"


def _check(node: Node, key: str, done: dict[int, bool]) -> None:
    """Refuse, under `key` (a `--path` key such as `carepath:services.chat-api.tag`), the
    first duplicated key, unquoted value read two ways, tag that is no config value, or alias
    inside its own anchor. `done`: the nodes checked (True) or being checked (False)."""
    if done.get(id(node)) is False:
        raise _Refused(node.start_mark, f"{key}: an alias inside its own anchor (a value that contains itself)")
    if id(node) in done:  # an alias, checked where its anchor is
        return
    done[id(node)] = False
    problem = _ambiguity(node) if isinstance(node, ScalarNode) else None
    if problem is None and node.tag not in VALUE_TAGS:
        problem = f"the tag {node.tag.replace(CORE, '!!')} is not a config value (a string, number, boolean, null, list or mapping)"
    if problem is not None:
        raise _Refused(node.start_mark, f"{key}: {problem}" if key else problem)
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _check(item, f"{key}[{index}]", done)
    elif isinstance(node, MappingNode):
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE:  # `<<: *anchor`: its keys may be overridden here
                _check(value_node, key, done)
                continue
            _check(key_node, key, done)
            name = _reading(key_node) if isinstance(key_node, ScalarNode) else None
            child = str(name) if key in ("", "config") else f"{key}.{name}"
            if name is not None and name in first:
                raise _Refused(key_node.start_mark, f"duplicated key {child} (first at line {first[name]})")
            if name is not None:
                first[name] = key_node.start_mark.line + 1
            _check(value_node, child, done)
    done[id(node)] = True


_RESOLVER = yaml.resolver.Resolver()  # PyYAML's, YAML 1.1
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _implicit_tag(text: str) -> str:
    return _RESOLVER.resolve(ScalarNode, text, (True, False))


def _reading(node: ScalarNode) -> Any:
    """A scalar as PyYAML reads it."""
    return _CONSTRUCTOR.yaml_constructors[node.tag](_CONSTRUCTOR, node)


def _ambiguity(node: ScalarNode) -> Optional[str]:
    """Why an unquoted scalar is refused (None: every reader reads it alike, or it is quoted or tagged)."""
    text = node.value
    if node.style is not None or node.tag != _implicit_tag(text):
        return None
    if node.tag not in _CONSTRUCTOR.yaml_constructors:  # `=` and `<<`, YAML 1.1's value and merge keys
        return f"{text} is no value to YAML 1.1 readers; quote it (\"{text}\")"
    ours, pulumis = _reading(node), pulumi_reading(text)
    decimal = int(text.replace("_", ""), 10) if re.fullmatch(r"[-+]?0[0-9_]+", text) else None
    if isinstance(pulumis, int) and not isinstance(pulumis, bool) and decimal is not None and decimal != pulumis:
        return f"{text} has a leading zero: Pulumi reads it as the octal number {pulumis}, YAML 1.2 as {decimal}; write the number without it, or quote it (\"{text}\") for the text"
    if _same(ours, pulumis):
        return None
    number = next((value for value in (pulumis, ours) if not isinstance(value, str)), None)
    instead = f", or write {_described(number)}" if isinstance(number, (bool, int, float)) else ""
    return f"{text} reads as {_described(pulumis)} to Pulumi but as {_described(ours)} to YAML 1.1 readers; quote it (\"{text}\") for the text{instead}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _described(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return f'the text "{value}"'
    return f"a {type(value).__name__}"


# --- go-yaml v3, the Pulumi CLI's reader (its `resolve`), for an untagged unquoted scalar -----------

_GO_CONSTANTS: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
# strconv.ParseInt(s, 0, 64): an optional sign, then 0x, 0o, 0b, a leading 0 (octal) or decimal.
_GO_INTEGER = re.compile(r"(?P<sign>[-+]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[oO](?P<oct>[0-7]+)|0[bB](?P<bin>[01]+)|0(?P<zero>[0-7]*)|(?P<dec>[1-9][0-9]*))")
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def pulumi_reading(text: str) -> Any:
    """What the Pulumi CLI reads an untagged unquoted scalar as: go-yaml v3 takes only
    true/false as booleans, underscores out of numbers, a leading 0 as octal (as 0o does), a
    float with or without a dot, and a date as its text."""
    if text in _GO_CONSTANTS:
        return _GO_CONSTANTS[text]
    if text.startswith("."):
        return float(text) if re.fullmatch(r"\.[0-9]+([eE][-+]?[0-9]+)?", text) else text
    if text[:1] not in set("+-0123456789"):
        return text
    plain = text.replace("_", "")
    match = _GO_INTEGER.fullmatch(plain)
    if match:
        base, digits = next((base, match[group]) for group, base in (("hex", 16), ("oct", 8), ("bin", 2), ("zero", 8), ("dec", 10)) if match[group] is not None)
        value = int(digits or "0", base) * (-1 if match["sign"] == "-" else 1)
        if -(2**63) <= value < 2**63 or (not match["sign"] and value < 2**64):  # ParseInt, else ParseUint
            return value
    if _GO_FLOAT.fullmatch(plain):
        return float(plain)
    return text

