"""Reading a stack's config: the `carepath:` sections, a misspelled namespace kept for the settings
to refuse, and which values the stack file stores encrypted."""

from __future__ import annotations

import pytest

from components.routers.factory import TRAITS
from core.settings import SettingsError, parse
from core.stack_config import carepath_sections, misspelled_namespace, secret_paths
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
