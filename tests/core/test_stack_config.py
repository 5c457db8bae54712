"""Reading a stack's config: the `carepath:` sections, a misspelled namespace kept for the settings
to refuse, and which values the stack file stores encrypted."""

from __future__ import annotations

import pytest

from components.routers.factory import TRAITS
from core.paths import UNSET, PathError, set_path
from core.settings import SettingsError, parse
from core.stack_config import carepath_sections, config_path, misspelled_namespace, parse_path, secret_paths, split_words
from offline.harness import STACKS, load_stack_config
from program import provider_keys
from tests.conftest import settings_from

SERVICES = {"chat-api": {"tag": "v1.4.0", "rollout": {"strategy": "rolling"}}}


def test_the_carepath_sections_drop_other_namespaces():
    config = {"aws:region": "us-east-1", "kubernetes:context": "x", "carepath:services": SERVICES, "carepath:servcies": {}}
    assert carepath_sections(config) == {"services": SERVICES, "servcies": {}}


@pytest.mark.parametrize("namespace", ["carepth", "care-path", "CarePath", "carepaht", "carepath_"])
def test_a_misspelled_namespace_is_kept_whole(namespace):
    assert misspelled_namespace(namespace)
    config = {"carepath:services": SERVICES, f"{namespace}:edge": {"testPort": 9443}}
    assert carepath_sections(config) == {"services": SERVICES, f"{namespace}:edge": {"testPort": 9443}}


@pytest.mark.parametrize("namespace", ["carepath", "aws", "kubernetes", "pulumi", "eks", "awsx", "random"])
def test_other_namespaces_are_not_misspellings(namespace):
    assert not misspelled_namespace(namespace)


def test_a_misspelled_namespace_is_refused_by_the_settings():
    raw = carepath_sections({"aws:region": "us-east-1", "carepath:services": SERVICES, "carepth:edge": {"testPort": 9443}})
    with pytest.raises(ValueError) as caught:
        settings_from(raw, "demo")
    assert caught.value.args and "carepth:edge: unknown namespace 'carepth'; did you mean 'carepath:edge'? (this program reads carepath: keys)" in str(caught.value)


@pytest.mark.parametrize("stack", STACKS)
def test_the_stack_files_have_no_misspelled_namespace(stack):
    assert all(":" not in section for section in carepath_sections(load_stack_config(stack)))


def test_the_encrypted_values_are_named_by_their_keys():
    config = {
        "aws:region": "us-east-1",
        "carepath:secrets": {"slackUrl": {"secure": "AAAB"}, "pagerKey": "k-123"},
        "carepath:monitoring": {"receivers": [{"name": "x", "kind": "webhook", "secret": {"secure": "AAAC"}}]},
    }
    assert secret_paths(config) == {"secrets.slackUrl", "monitoring.receivers[0].secret"}
    assert secret_paths({"carepath:services": SERVICES}) == frozenset()


def test_a_providers_unknown_key_is_kept_whole():
    config = {"aws:region": "us-east-1", "aws:regoin": "us-east-1", "kubernetes:context": "x", "carepath:services": SERVICES}
    assert carepath_sections(config, providers={"aws": {"region", "defaultTags"}}) == {"services": SERVICES, "aws:regoin": "us-east-1"}


def test_a_providers_unknown_key_is_refused_with_the_closest_known_key():
    raw = carepath_sections({"aws:regoin": "us-east-1", "aws:defaultTags": {"tags": {}}, "carepath:services": SERVICES}, providers=provider_keys())
    with pytest.raises(SettingsError) as caught:
        parse(raw, "demo", routers=TRAITS, providers=provider_keys())
    assert "aws:regoin: unknown key of the aws provider; did you mean aws:region?" in caught.value.problems


def test_the_provider_keys_come_from_the_installed_package():
    aws = provider_keys()["aws"]
    assert {"region", "defaultTags", "profile", "skipCredentialsValidation", "s3UsEast1RegionalEndpoint"} <= aws
    assert "regoin" not in aws and "default_tags" not in aws


@pytest.mark.parametrize("stack", STACKS)
def test_the_stack_files_use_only_known_provider_keys(stack):
    assert all(":" not in section for section in carepath_sections(load_stack_config(stack), providers=provider_keys()))


@pytest.mark.parametrize(
    "key, parts",
    [
        ("services.chat-api.tag", ["carepath:services", "chat-api", "tag"]),
        ("monitoring.receivers[0].name", ["carepath:monitoring", "receivers", 0, "name"]),
        ("monitoring.receivers[10]", ["carepath:monitoring", "receivers", 10]),
        ('secrets["key.with.dots"]', ["carepath:secrets", "key.with.dots"]),
        ('["parent.name"].["nested.name"]', ["carepath:parent.name", "nested.name"]),  # Pulumi's own example
        ('["parent.name"]["nested.name"]', ["carepath:parent.name", "nested.name"]),
        ('services["a \\"quoted\\" name"]', ["carepath:services", 'a "quoted" name']),
        ('services["aws:region"]', ["carepath:services", "aws:region"]),  # a colon in a quoted name is no namespace
        ("aws:region", ["aws:region"]),
        ("aws:assumeRole.roleArn", ["aws:assumeRole", "roleArn"]),
    ],
)
def test_keys_are_read_as_pulumi_config_set_path_reads_them(key, parts):
    assert config_path(key) == parts


@pytest.mark.parametrize(
    "path, problem",
    [
        ("a..b", "an empty name at character 3"),
        ("a.", "an empty name at character 3"),
        (".a", "an empty name at character 1"),
        ("a[-1]", "[-1] is a negative index; lists count from [0]"),
        ("a[x]", "an unbalanced '[' or an index that is not a number"),
        ("a[0", "an unbalanced '[' or an index that is not a number"),
        ("a]", "an unbalanced ']' at character 2"),
        ('a["b]', "an unterminated quoted name"),
        ("a[0]b", "an unexpected 'b' at character 5"),
        ("[0].a", "a key starts with a name, not an index"),
        ("", "the key is empty"),
    ],
)
def test_a_path_pulumi_would_refuse_is_a_path_error(path, problem):
    with pytest.raises(PathError) as caught:
        parse_path(path)
    assert problem in str(caught.value)


def test_set_path_walks_lists_and_appends_at_their_end():
    config = {"carepath:monitoring": {"receivers": [{"name": "a"}]}}
    set_path(config, config_path("monitoring.receivers[0].name"), "oncall")
    set_path(config, config_path("monitoring.receivers[1].name"), "pager")  # [len] appends
    set_path(config, config_path("monitoring.routes[0][0]"), 5)  # absent: lists created on the way
    assert config == {"carepath:monitoring": {"receivers": [{"name": "oncall"}, {"name": "pager"}], "routes": [[5]]}}
    set_path(config, config_path("monitoring.receivers[0]"), UNSET)
    set_path(config, config_path("monitoring.receivers[7].name"), UNSET)  # absent: nothing to remove
    assert config["carepath:monitoring"]["receivers"] == [{"name": "pager"}]


@pytest.mark.parametrize(
    "key, problem",
    [
        ("services.chat-api.tag.x", "carepath:services.chat-api.tag is a string, not a mapping: it has no key 'x'"),
        ("services.chat-api.tag[0]", "carepath:services.chat-api.tag is a string, not a list: it has no index [0]"),
        ("services[0]", "carepath:services is a mapping, not a list: it has no index [0]"),
        ("services.chat-api.steps.x", "carepath:services.chat-api.steps is a list, not a mapping: it has no key 'x'"),
        ("services.chat-api.steps[3]", "[3] is past the end of carepath:services.chat-api.steps (2 items): the next one is [2]"),
        ("services.chat-api.replicas.x", "carepath:services.chat-api.replicas is a number, not a mapping"),
    ],
)
def test_a_path_through_a_value_of_another_kind_is_a_path_error(key, problem):
    config = {"carepath:services": {"chat-api": {"tag": "v1", "steps": [50, 100], "replicas": 2}}}
    with pytest.raises(PathError) as caught:
        set_path(config, config_path(key), 1)
    assert problem in str(caught.value)
    assert config == {"carepath:services": {"chat-api": {"tag": "v1", "steps": [50, 100], "replicas": 2}}}, "nothing half-written"


@pytest.mark.parametrize(
    "text, words",
    [
        ("a=1 b=2", ["a=1", "b=2"]),
        ("  tag=v2   steps=[5, 50, 100] ", ["tag=v2", "steps=[5, 50, 100]"]),
        ("'note=a b' x=\"c d\"", ["note=a b", "x=c d"]),
        ('t={"tag": "v 0.3", "x": "] }"} y=1', ['t={"tag": "v 0.3", "x": "] }"}', "y=1"]),
        ('["a.b"].c=1 paths=[/] x=a=b', ['["a.b"].c=1', "paths=[/]", "x=a=b"]),
        ("", []),
    ],
)
def test_make_set_is_split_on_spaces_outside_quotes_and_brackets(text, words):
    assert split_words(text) == words


@pytest.mark.parametrize("text", ["steps=[5, 50", "x='a b", 'x={"a": "b}'])
def test_an_open_bracket_or_quote_in_make_set_is_refused(text):
    with pytest.raises(ValueError, match="is left open"):
        split_words(text)
