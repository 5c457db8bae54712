"""The stack file: the driver's one write, atomic, keeping comments, key order and secrets."""

from __future__ import annotations

import copy
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import actions
from core.paths import UNSET
from core.settings import SettingsError
from core.stack_config import carepath_sections
from offline.harness import ROOT, STACKS, load_stack_config
from release.stackfile import SECRET_PLACEHOLDER, StackFile, apply_changes, settings_of
from tests.conftest import settings_from

RELEASE_ID = "a1b2c3d4e5f6"
STARTED = "2026-11-28T10:02:11Z"
CIPHERTEXT = "v1:Zm9vYmFyYmF6cXV4:c2VjcmV0LXdlYmhvb2stdXJs"
CHAT = "services.chat-api."


def copy_of(tmp_path: Path, stack: str) -> Path:
    path = tmp_path / f"Pulumi.{stack}.yaml"
    shutil.copyfile(ROOT / f"Pulumi.{stack}.yaml", path)
    return path


def sections(stack: str) -> dict:
    """The `carepath:` sections of the repository's stack file, as PyYAML reads them."""
    return carepath_sections(load_stack_config(stack))


def start(stack_file: StackFile, stack: str, service: str = "chat-api") -> None:
    stack_file.write(actions.start(settings_from(stack_file.config(), stack), service, "v2.0.0", RELEASE_ID, STARTED, 1).changes)


# --- reading and writing --------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_a_write_of_nothing_leaves_each_stack_file_byte_identical(tmp_path, stack):
    path = copy_of(tmp_path, stack)
    original = path.read_bytes()
    StackFile(path).write({})
    assert path.read_bytes() == original


@pytest.mark.parametrize("stack", STACKS)
def test_config_reads_the_carepath_sections_as_pulumi_does(tmp_path, stack):
    assert StackFile(copy_of(tmp_path, stack)).config() == sections(stack)


def test_a_write_changes_only_the_lines_of_its_keys(tmp_path):
    path = copy_of(tmp_path, "staging")
    original = path.read_text()
    StackFile(path).write({f"{CHAT}rollout.canary.weight": 5, f"{CHAT}replicas": 3})
    assert path.read_text() == original.replace("weight: 0", "weight: 5").replace("replicas: 2", "replicas: 3")


@pytest.mark.parametrize("stack", ["demo", "staging"])
def test_start_then_abort_leaves_the_stack_file_as_it_was(tmp_path, stack):
    path = copy_of(tmp_path, stack)
    original = path.read_text()
    stack_file = StackFile(path)
    start(stack_file, stack)
    assert "inFlight:" in path.read_text()
    stack_file.write(actions.abort(settings_from(stack_file.config(), stack), "chat-api").changes)
    assert path.read_text() == original


@pytest.mark.parametrize("stack", STACKS)
def test_a_write_reads_back_as_apply_changes_predicts(tmp_path, stack):
    stack_file = StackFile(copy_of(tmp_path, stack))
    before = stack_file.config()
    action = actions.start(settings_from(before, stack), "chat-api", "v2.0.0", RELEASE_ID, STARTED, 1)
    stack_file.write(action.changes)
    assert stack_file.config() == apply_changes(before, action.changes)
    assert settings_from(stack_file.config(), stack).service("chat-api").rollout.in_flight.id == RELEASE_ID


def test_unset_removes_a_key_and_nothing_else(tmp_path):
    path = copy_of(tmp_path, "staging")
    original = path.read_text()
    StackFile(path).write({f"{CHAT}rollout.canary.weight": UNSET})
    assert path.read_text() == original.replace("          weight: 0\n", "")
    assert "weight" not in StackFile(path).config()["services"]["chat-api"]["rollout"]["canary"]


def test_unset_of_a_whole_section_removes_it(tmp_path):
    path = copy_of(tmp_path, "demo")
    StackFile(path).write({"monitoring": UNSET})
    assert "carepath:monitoring" not in path.read_text()
    assert "monitoring" not in StackFile(path).config()


# --- comments around the keys a release adds and removes ------------------------------------------

COMMENT = "  # Istio: the canary's traffic split.\n"


def test_a_comment_above_the_next_section_stays_above_it_while_a_release_is_in_flight(tmp_path):
    path = copy_of(tmp_path, "staging")
    path.write_text(path.read_text().replace("  carepath:mesh:\n", COMMENT + "  carepath:mesh:\n"))
    start(StackFile(path), "staging")
    text = path.read_text()
    assert COMMENT + "  carepath:mesh:\n" in text, text[text.index("  carepath:services:") :]


def test_ending_a_release_keeps_the_comment_above_the_next_section(tmp_path):
    path = copy_of(tmp_path, "staging")
    stack_file = StackFile(path)
    start(stack_file, "staging")
    path.write_text(path.read_text().replace("  carepath:mesh:\n", COMMENT + "  carepath:mesh:\n"))  # an operator's note
    stack_file.write(actions.promote(settings_from(stack_file.config(), "staging"), "chat-api").changes)
    text = path.read_text()
    assert COMMENT + "  carepath:mesh:\n" in text, text[text.index("  carepath:services:") :]


SERVICE_COMMENT = "    # triage-api: the nurses' triage assistant.\n"
TRIAGE = "    triage-api:\n      tag: v1.0.0\n      hosts: [triage.example.org]\n      rollout:\n        strategy: canary\n"


def test_a_comment_above_the_next_service_stays_above_it_through_a_release_of_the_one_before(tmp_path):
    path = copy_of(tmp_path, "staging")
    path.write_text(path.read_text().replace("  carepath:mesh:\n", SERVICE_COMMENT + TRIAGE + "  carepath:mesh:\n"))
    stack_file = StackFile(path)
    start(stack_file, "staging")
    assert SERVICE_COMMENT + "    triage-api:\n" in path.read_text(), path.read_text()
    stack_file.write(actions.promote(settings_from(stack_file.config(), "staging"), "chat-api").changes)
    assert SERVICE_COMMENT + "    triage-api:\n" in path.read_text(), path.read_text()
    start(stack_file, "staging", "triage-api")
    text = path.read_text()
    assert SERVICE_COMMENT + "    triage-api:\n" in text and text.index("inFlight:") > text.index("triage-api:"), text


# --- secrets ------------------------------------------------------------------------------------

WITH_SECRET = f"""\
config:
  aws:region: us-east-1
  carepath:services:
    chat-api:
      tag: v1.4.0
      rollout:
        strategy: rolling
  carepath:monitoring:
    receivers:
      - name: team
        kind: slack
        secret: slackUrl
  carepath:secrets:
    slackUrl:
      secure: {CIPHERTEXT}
  carepath:edge:
    allowPlainHttp: true
"""


def test_config_drops_a_secrets_ciphertext_and_keeps_it_marked_encrypted(tmp_path):
    path = tmp_path / "Pulumi.demo.yaml"
    path.write_text(WITH_SECRET)
    config = StackFile(path).config()
    assert config["secrets"] == {"slackUrl": {"secure": SECRET_PLACEHOLDER}}
    assert CIPHERTEXT not in repr(config)
    settings = settings_of(config, "demo")
    assert (settings.monitoring.receivers[0].secret, settings.secrets) == ("slackUrl", {"slackUrl": SECRET_PLACEHOLDER})


def test_a_write_keeps_the_ciphertext_in_the_file(tmp_path):
    path = tmp_path / "Pulumi.demo.yaml"
    path.write_text(WITH_SECRET)
    StackFile(path).write({f"{CHAT}tag": "v2.0.0"})
    assert path.read_text() == WITH_SECRET.replace("tag: v1.4.0", "tag: v2.0.0")


# --- an interrupted write -------------------------------------------------------------------------


@pytest.mark.parametrize("interruption", [OSError("disk full"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_an_interrupted_write_leaves_the_file_as_it_was_and_no_temporary_file(tmp_path, monkeypatch, interruption):
    path = copy_of(tmp_path, "staging")
    original = path.read_bytes()

    def interrupted(source, target):
        raise interruption

    monkeypatch.setattr("release.stackfile.os.replace", interrupted)
    with pytest.raises(type(interruption)):
        StackFile(path).write({f"{CHAT}rollout.canary.tag": "v2.0.0", f"{CHAT}rollout.canary.weight": 5})
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Pulumi.staging.yaml"]


def test_writers_at_once_never_lose_each_others_keys(tmp_path):
    """Drivers of several services write one stack file at once: each rewrite reads and writes
    under the file's lock."""
    path = copy_of(tmp_path, "staging")

    def writer(n: int) -> None:
        stack_file = StackFile(path)  # each its own, as each process has
        for step in range(15):
            stack_file.write({f"services.service-{n}.step": step})

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(writer, range(4)))
    services = StackFile(path).config()["services"]
    assert {n: services[f"service-{n}"]["step"] for n in range(4)} == dict.fromkeys(range(4), 14)
    assert services["chat-api"] == sections("staging")["services"]["chat-api"]


# --- apply_changes ------------------------------------------------------------------------------

paths = st.sampled_from([
    f"{CHAT}{key}" for key in ("tag", "replicas", "rollout.canary.tag", "rollout.canary.weight", "rollout.inFlight", "rollout.blueGreen.active")
] + ["services.triage-api.tag", "monitoring", "mesh.enabled"])
values = st.one_of(st.just(UNSET), st.integers(0, 100), st.text(max_size=8), st.dictionaries(st.sampled_from(["id", "tag"]), st.text(max_size=4), max_size=2))


@given(st.sampled_from(STACKS), st.dictionaries(paths, values, max_size=5))
def test_apply_changes_leaves_its_input_alone(stack, changes):
    config = sections(stack)
    before = copy.deepcopy(config)
    result = apply_changes(config, changes)
    assert config == before
    result["services"]["chat-api"].setdefault("rollout", {})["strategy"] = "changed"
    result["services"]["chat-api"]["tag"] = "changed"
    assert config == before, "the result shares no mapping with the input"


def test_apply_changes_sets_and_removes_nested_keys():
    config = {"services": {"chat-api": {"rollout": {"strategy": "canary", "canary": {"weight": 0, "tag": "v2.0.0"}}}}}
    changes = {f"{CHAT}rollout.canary.tag": UNSET, f"{CHAT}rollout.canary.weight": 0, f"{CHAT}rollout.inFlight": {"id": RELEASE_ID, "tag": "v2.0.0"}, f"{CHAT}tag": "v2.0.0"}
    assert apply_changes(config, changes) == {
        "services": {"chat-api": {"rollout": {"strategy": "canary", "canary": {"weight": 0}, "inFlight": {"id": RELEASE_ID, "tag": "v2.0.0"}}, "tag": "v2.0.0"}},
    }


def test_each_secret_of_a_stack_file_is_checked_on_its_own():
    config = {"services": {"chat-api": {"tag": "v1.4.0", "rollout": {"strategy": "rolling"}}}, "edge": {"allowPlainHttp": True}}
    encrypted = {"secure": "v1:AAAB"}
    assert settings_of({**config, "secrets": {"slackUrl": encrypted}}, "demo").secrets == {"slackUrl": SECRET_PLACEHOLDER}
    with pytest.raises(SettingsError) as refused:
        settings_of({**config, "secrets": {"slackUrl": encrypted, "pagerKey": "hunter2-plain"}}, "demo")
    assert refused.value.problems == ["carepath:secrets.pagerKey: set in plain text; use `pulumi config set --secret --path secrets.pagerKey <value>`"]
    assert "hunter2" not in str(refused.value)


def test_the_driver_refuses_a_misspelled_provider_key_in_the_stack_file(tmp_path):
    path = copy_of(tmp_path, "staging")
    path.write_text(path.read_text().replace("  aws:region: us-east-1\n", "  aws:region: us-east-1\n  aws:profle: ops\n"))
    with pytest.raises(SettingsError) as caught:
        settings_of(StackFile(path).config(), "staging")
    assert caught.value.problems == ["aws:profle: unknown key of the aws provider; did you mean aws:profile?"]


# --- read strictly --------------------------------------------------------------------------


def test_the_driver_reads_strictly_and_refuses_to_rewrite_a_file_the_reader_refuses(tmp_path, monkeypatch):
    from offline.stack_yaml import StackFileError

    monkeypatch.chdir(tmp_path)
    path = copy_of(tmp_path, "staging")
    text = path.read_text().replace("      replicas: 2\n", "      replicas: 2\n      replicas: 3\n")
    path.write_text(text)
    line = text.splitlines().index("      replicas: 3") + 1
    for read in (StackFile(path).config, lambda: StackFile(path).write({f"{CHAT}rollout.canary.weight": 5})):
        with pytest.raises(StackFileError) as caught:
            read()
        assert str(caught.value) == f"Pulumi.staging.yaml:{line}:7: duplicated key carepath:services.chat-api.replicas (first at line {line - 1})"
    assert path.read_text() == text, "nothing written"


def test_the_driver_reads_values_as_pulumi_does_where_ruamel_alone_would_not(tmp_path):
    """A leading-zero number, which ruamel (YAML 1.2) would read as 10 and Pulumi as 8, is
    refused rather than read either way."""
    from offline.stack_yaml import StackFileError

    path = copy_of(tmp_path, "staging")
    path.write_text(path.read_text().replace("      replicas: 2\n", "      replicas: 010\n"))
    with pytest.raises(StackFileError, match="010 has a leading zero: Pulumi reads it as the octal number 8, YAML 1.2 as 10"):
        StackFile(path).config()


@pytest.mark.parametrize("value", ["on", "1:30", "2026-11-28", "1e3", "010"])
def test_a_written_string_every_reader_would_not_read_as_that_string_is_quoted(tmp_path, value):
    path = copy_of(tmp_path, "staging")
    stack_file = StackFile(path)
    stack_file.write({f"{CHAT}rollout.canary.header.value": value, f"{CHAT}hosts": ["chat.example.org", value]})
    assert f'value: "{value}"' in path.read_text() or f"value: '{value}'" in path.read_text()
    service = stack_file.config()["services"]["chat-api"]
    assert (service["rollout"]["canary"]["header"]["value"], service["hosts"]) == (value, ["chat.example.org", value])
