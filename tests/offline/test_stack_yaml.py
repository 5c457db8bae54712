"""The strict stack-file reader: what Pulumi reads, or one line saying where and why not."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from offline.harness import ROOT, STACKS
from offline.stack_yaml import StackFileError, parse, pulumi_reading, reads_as_text, stack_config

FILE = Path("Pulumi.staging.yaml")


def refusal(text: str) -> str:
    with pytest.raises(StackFileError) as caught:
        parse(text, FILE)
    return str(caught.value)


def service(value: str) -> str:
    """A stack file whose chat-api `replicas` (line 4, column 17) is `value`, unquoted."""
    return f"config:\n  carepath:services:\n    chat-api:\n      replicas: {value}\n"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("010", '010 has a leading zero: Pulumi reads it as the octal number 8, YAML 1.2 as 10; write the number without it, or quote it ("010") for the text'),
        ("1:30", '1:30 reads as the text "1:30" to Pulumi but as 90 to YAML 1.1 readers; quote it ("1:30") for the text, or write 90'),
        ("on", 'on reads as the text "on" to Pulumi but as true to YAML 1.1 readers; quote it ("on") for the text, or write true'),
        ("No", 'No reads as the text "No" to Pulumi but as false to YAML 1.1 readers; quote it ("No") for the text, or write false'),
        ("1e3", '1e3 reads as 1000.0 to Pulumi but as the text "1e3" to YAML 1.1 readers; quote it ("1e3") for the text, or write 1000.0'),
        ("0o17", '0o17 reads as 15 to Pulumi but as the text "0o17" to YAML 1.1 readers; quote it ("0o17") for the text, or write 15'),
        ("08", '08 reads as 8.0 to Pulumi but as the text "08" to YAML 1.1 readers; quote it ("08") for the text, or write 8.0'),
        ("2026-11-28", '2026-11-28 reads as the text "2026-11-28" to Pulumi but as a date to YAML 1.1 readers; quote it ("2026-11-28") for the text'),
        ("=", '= is no value to YAML 1.1 readers; quote it ("=")'),
    ],
)
def test_an_unquoted_value_read_two_ways_is_refused_with_its_file_line_column_key_and_remedy(value, says):
    assert refusal(service(value)) == f"Pulumi.staging.yaml:4:17: carepath:services.chat-api.replicas: {says}"


@pytest.mark.parametrize(
    ("value", "read"),
    [("0x1F", 31), ("0b101", 5), ("1_000", 1000), ("07", 7), ("1.0e+3", 1000.0), (".5", 0.5), ("1.34", 1.34), ("true", True), ("~", None),
     ('"010"', "010"), ("'on'", "on"), ("!!str 1:30", "1:30"), ("v1.4.0", "v1.4.0"), ("250m", "250m"), ("y", "y")],
)
def test_what_every_reader_reads_alike_or_is_quoted_or_tagged_is_read(value, read):
    assert parse(service(value), FILE)["config"]["carepath:services"]["chat-api"]["replicas"] == read


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("010", 8), ("-010", -8), ("0o17", 15), ("0x1F", 31), ("-0b101", -5), ("1_000", 1000), ("08", 8.0), ("1e3", 1000.0), (".5e1", 5.0),
        ("18446744073709551615", 2**64 - 1), ("-9223372036854775809", -9.223372036854775809e18), ("99999999999999999999", 1e20),
        ("on", "on"), ("yes", "yes"), ("1:30", "1:30"), ("2026-11-28", "2026-11-28"), ("._5", "._5"), ("0x", "0x"), ("-", "-"),
        ("True", True), ("FALSE", False), ("NULL", None), ("-.Inf", -math.inf),
    ],
)
def test_pulumi_reading_is_go_yaml_v3s(text, read):
    value = pulumi_reading(text)
    assert type(value) is type(read) and value == read


def test_a_nan_reads_alike_and_is_read():
    assert math.isnan(parse(service(".nan"), FILE)["config"]["carepath:services"]["chat-api"]["replicas"])


def test_a_duplicated_key_at_any_depth_is_refused_where_it_repeats():
    text = "config:\n  carepath:services:\n    chat-api:\n      tag: v1.4.0\n      replicas: 2\n      tag: v1.5.0\n"
    assert refusal(text) == "Pulumi.staging.yaml:6:7: duplicated key carepath:services.chat-api.tag (first at line 4)"
    assert refusal("config:\n  aws:region: us-east-1\n  aws:region: eu-west-1\n") == "Pulumi.staging.yaml:3:3: duplicated key aws:region (first at line 2)"
    assert refusal("config:\n  a:\n    - {x: 1, x: 2}\n") == "Pulumi.staging.yaml:3:14: duplicated key a[0].x (first at line 3)"


def test_a_merged_key_may_be_overridden():
    text = "config:\n  carepath:base: &base {replicas: 2, port: 8080}\n  carepath:other:\n    <<: *base\n    replicas: 3\n"
    assert parse(text, FILE)["config"]["carepath:other"] == {"replicas": 3, "port": 8080}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "config:\n  carepath:services:\n    chat-api:\n      tag: v1\n     replicas: 2\n",
            "Pulumi.staging.yaml:5:6: expected <block end>, but found '<block mapping start>' (while parsing a block mapping at line 3)",
        ),
        ("config:\n  carepath:services: [1, 2\n", "Pulumi.staging.yaml:3:1: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 2)"),
        ("config:\n  a: b: c\n", "Pulumi.staging.yaml:2:7: mapping values are not allowed here"),
        ("config:\n\ta: 1\n", "Pulumi.staging.yaml:2:1: found character '\\t' that cannot start any token"),
        ("config: {}\n---\nconfig: {}\n", "Pulumi.staging.yaml:2:1: but found another document (expected a single document in the stream at line 1)"),
        ('config:\n  a: "x\x07"\n', "Pulumi.staging.yaml:2:8: unacceptable character #x0007"),
        ("- config\n", "Pulumi.staging.yaml:1:1: a stack file is a mapping (config: ...), not a list"),
        ("config: [a]\n", "Pulumi.staging.yaml:1:9: config: a mapping of keys to values, not a list"),
        ("config:\n  a: !!binary aGk=\n", "Pulumi.staging.yaml:2:6: a: the tag !!binary is not a config value (a string, number, boolean, null, list or mapping)"),
        ("config:\n  a: &loop [*loop]\n", "Pulumi.staging.yaml:2:6: a[0]: an alias inside its own anchor (a value that contains itself)"),
    ],
    ids=["indentation", "unclosed list", "mapping in a value", "tab", "two documents", "control character", "a list", "config a list", "binary", "recursive alias"],
)
def test_a_file_that_is_no_stack_file_is_one_line_with_line_and_column(text, says):
    assert refusal(text) == says


def test_an_empty_file_or_config_is_no_config():
    assert parse("", FILE) == {} and parse("config:\n", FILE) == {"config": None}


def test_a_missing_unreadable_or_non_utf8_file_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StackFileError, match=r"^Pulumi\.qa\.yaml: no such stack file$"):
        stack_config(Path("Pulumi.qa.yaml"))
    with pytest.raises(StackFileError, match=r"^sub: Is a directory$"):
        (tmp_path / "sub").mkdir()
        stack_config(Path("sub"))
    (tmp_path / "Pulumi.latin.yaml").write_bytes(b"config:\n  a: caf\xe9\n")
    with pytest.raises(StackFileError, match=r"^Pulumi\.latin\.yaml:2: not UTF-8 text \(byte 0xe9\)$"):
        stack_config(tmp_path / "Pulumi.latin.yaml")


def test_a_file_outside_the_working_directory_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    path = tmp_path / "Pulumi.base.yaml"
    path.write_text("config:\n  a: on\n")
    with pytest.raises(StackFileError) as caught:
        stack_config(path)
    assert str(caught.value).startswith(f"{path}:2:6: a: on reads as")
    assert (caught.value.path, caught.value.line, caught.value.column) == (path, 2, 6)


@pytest.mark.parametrize("stack", STACKS)
def test_the_projects_stack_files_are_read_and_as_pyyaml_reads_them(stack):
    path = ROOT / f"Pulumi.{stack}.yaml"
    assert stack_config(path) == yaml.safe_load(path.read_text())["config"]


@pytest.mark.parametrize(
    ("text", "plain"),
    [("v2.0.0", True), ("blue", True), ("y", True), ("on", False), ("1:30", False), ("010", False), ("2026-11-28", False), ("1e3", False), ("", False), ("12", False)],
)
def test_reads_as_text_says_which_strings_must_be_quoted(text, plain):
    assert reads_as_text(text) is plain
