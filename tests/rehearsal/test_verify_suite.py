"""The example verification suite (verify/) as a stage runs it: `python -m pytest ... verify` from
the project directory, in a process of its own, with the candidate in the environment, against
the rehearsal's synthetic service."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterator, Optional

import pytest

from offline.harness import ROOT
from rehearsal import SyntheticService, TrackLoad

STABLE, CANDIDATE = "v1.0.0", "v2.0.0"
DARK_CANARY = [TrackLoad("stable", STABLE, 100, 2), TrackLoad("canary", CANDIDATE, 0, 1)]
# A stage's verify.command, as the stack files have it.
SUITE = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "verify/pytest.ini", "verify"]
TESTS = (
    "test_the_candidate_is_healthy",
    "test_the_candidate_itself_answers_a_chat_request",
    "test_the_answer_is_complete",
    "test_a_triage_request_gets_a_triage_outcome",
)


def verify(url: Optional[str], header: str = "x-version: canary", tag: str = CANDIDATE) -> subprocess.CompletedProcess[str]:
    environ = {name: value for name, value in os.environ.items() if not name.startswith(("CAREPATH_VERIFY_", "PYTEST_"))}
    environ |= {"CAREPATH_VERIFY_HEADER": header, "CAREPATH_VERIFY_TAG": tag, "CAREPATH_VERIFY_STACK": "staging", "CAREPATH_VERIFY_SERVICE": "chat-api"}
    if url is not None:
        environ["CAREPATH_VERIFY_URL"] = url
    return subprocess.run(SUITE, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)


def serving(scenario: str = "good") -> SyntheticService:
    """The synthetic chat-api with a canary at weight 0, its candidate behaving as `scenario`; a context manager."""
    return SyntheticService("carepath-staging", CANDIDATE, scenario, lambda: DARK_CANARY)


@pytest.fixture
def service() -> Iterator[SyntheticService]:
    with serving() as running:
        yield running


def failed(run: subprocess.CompletedProcess[str]) -> set[str]:
    return {test for test in TESTS if f"FAILED verify/test_candidate.py::{test}" in run.stdout}


def test_a_good_candidate_passes_through_the_tester_header(service: SyntheticService):
    run = verify(service.url)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout


def test_the_suite_runs_under_its_own_pytest_ini_even_without_naming_it():
    # Not the project's (xdist workers, `testpaths = tests`): pytest takes the ini nearest the path it
    # is given, so `-c verify/pytest.ini` in a stage's command only says so explicitly.
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-p", "no:cacheprovider", "verify"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "CAREPATH_VERIFY_URL": "http://127.0.0.1:9", "CAREPATH_VERIFY_TAG": CANDIDATE}, timeout=120)
    assert f"rootdir: {ROOT / 'verify'}\nconfigfile: pytest.ini\n" in run.stdout, run.stdout + run.stderr
    assert "4 tests collected" in run.stdout


def test_a_good_candidate_passes_through_the_test_listener(service: SyntheticService):
    run = verify(service.test_url.rstrip("/"), header="")
    assert run.returncode == 0, run.stdout + run.stderr


def test_without_the_header_stable_answers_and_the_suite_says_so(service: SyntheticService):
    run = verify(service.url, header="")
    assert run.returncode == 1
    assert failed(run) == {"test_the_candidate_itself_answers_a_chat_request"}
    assert f"answered by '{STABLE}', not the candidate {CANDIDATE}" in run.stdout


def test_a_broken_candidate_fails_the_suite_by_name():
    with serving("broken") as service:
        run = verify(service.url)
    assert run.returncode == 1
    assert failed(run) == set(TESTS)
    assert "/healthz answered 503" in run.stdout and "/v1/chat answered 500" in run.stdout


def test_an_unreachable_candidate_fails_saying_where():
    with serving() as stopped:
        url = stopped.url
    run = verify(url)
    assert run.returncode == 1 and failed(run) == set(TESTS)
    assert f"GET {url}/healthz: [Errno 111] Connection refused" in run.stdout


@pytest.mark.parametrize(
    ("url", "header", "message"),
    [
        (None, "x-version: canary", "CAREPATH_VERIFY_URL not set: this suite tests a deployed candidate"),
        ("http://127.0.0.1:9", "x-version canary", "CAREPATH_VERIFY_HEADER='x-version canary': expected `name: value`"),
    ],
)
def test_a_suite_without_its_candidate_refuses_to_run(url: Optional[str], header: str, message: str):
    run = verify(url, header)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert message in run.stderr
    assert "passed" not in run.stdout and "failed" not in run.stdout
