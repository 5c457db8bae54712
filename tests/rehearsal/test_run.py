"""A rehearsal's moving parts on offline stacks of this repository's stack files: one stack's
rehearsal, and a promotion path's, each stage with its own synthetic service and Prometheus,
all of them stopped after, also when the block raises or a stage fails to start."""

from __future__ import annotations

import contextlib
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

import rehearsal.run as run
from offline.harness import ROOT
from rehearsal import query
from rehearsal.run import Rehearsed, path_rehearsal, rehearsal
from release.stacks import OfflineStack

CANDIDATE = "v2.0.0"
WARM_UP = 2.0


def offline(name: str, tmp_path: Path) -> OfflineStack:
    return OfflineStack(name, ROOT, workspace=tmp_path / "offline" / name)


def namespaces(prometheus_url: str) -> set[str]:
    return {series["metric"]["namespace"] for series in query(prometheus_url, "count by (namespace) (http_requests_total)")}


def refused(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
    except OSError:
        return True
    return False


def stopped(stage: Rehearsed) -> bool:
    return all(refused(url) for url in (f"{stage.prometheus_url}/-/ready", f"{stage.synthetic.url}/healthz", f"{stage.synthetic.test_url}/healthz"))


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Rehearsed]:
    """Every stage a path rehearsal started, even one it never yielded."""
    seen: list[Rehearsed] = []
    scraped = run._scraped

    @contextlib.contextmanager
    def recording(*args: Any) -> Iterator[Rehearsed]:
        with scraped(*args) as rehearsed:
            seen.append(rehearsed)
            yield rehearsed

    monkeypatch.setattr(run, "_scraped", recording)
    return seen


def test_a_rehearsal_yields_its_prometheus_and_service_after_the_warm_up(tmp_path: Path):
    header = "services.chat-api.rollout.canary.header"
    stack = OfflineStack("staging", ROOT, {f"{header}.name": "x-tester", f"{header}.value": "yes"}, workspace=tmp_path / "offline" / "staging")
    begun = time.monotonic()
    with rehearsal(stack, CANDIDATE, "good", warm_up=WARM_UP) as (url, synthetic):
        assert time.monotonic() - begun >= WARM_UP
        assert namespaces(url) == {"carepath-staging"} and synthetic.namespace == "carepath-staging"
        assert synthetic.header == ("x-tester", "yes")  # the stack's tester header reaches its candidate
    assert refused(f"{url}/-/ready") and refused(f"{synthetic.url}/healthz") and refused(f"{synthetic.test_url}/healthz")


def test_every_stage_of_a_path_gets_its_own_service_and_prometheus_all_stopped_after(tmp_path: Path, started: list[Rehearsed]):
    stacks = [offline("demo", tmp_path), offline("staging", tmp_path)]
    begun = time.monotonic()
    with pytest.raises(RuntimeError, match="the block failed"):
        with path_rehearsal(stacks, CANDIDATE, "good", warm_up=WARM_UP) as rehearsed:
            assert time.monotonic() - begun >= WARM_UP
            assert list(rehearsed) == ["demo", "staging"]
            for name, stage in rehearsed.items():
                # Each Prometheus scrapes its own stage's service only, in the stage's namespace.
                assert namespaces(stage.prometheus_url) == {f"carepath-{name}"}
                assert stage.synthetic.namespace == f"carepath-{name}" and stage.synthetic.candidate == CANDIDATE
                assert urllib.request.urlopen(f"{stage.synthetic.url}/healthz", timeout=5).status == 200
            assert len({stage.prometheus_url for stage in rehearsed.values()}) == 2
            raise RuntimeError("the block failed")
    assert sorted(stage.synthetic.namespace for stage in started) == ["carepath-demo", "carepath-staging"]
    assert all(map(stopped, started))


class Unreadable:
    """A stack whose config cannot be read: its stage fails to start."""

    name = "broken"

    def config(self) -> dict[str, Any]:
        raise OSError("Pulumi.broken.yaml: no such file")


def test_a_stage_that_fails_to_start_stops_the_others(tmp_path: Path, started: list[Rehearsed]):
    with pytest.raises(OSError, match="Pulumi.broken.yaml"):
        with path_rehearsal([offline("demo", tmp_path), Unreadable()], CANDIDATE, "good", warm_up=WARM_UP):
            pytest.fail("a path with a stage that did not start was yielded")
    assert [stage.synthetic.namespace for stage in started] == ["carepath-demo"]
    assert stopped(started[0])
