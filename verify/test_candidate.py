"""The example suite's checks of a candidate: healthy, answered by itself (not by stable), with a
complete answer, and a triage outcome for a triage request. A team's own suite goes further
(its clinical prompts, a load test in k6 or locust); conftest.py has the contract."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the fixture's type; pytest provides the fixture itself
    from conftest import Candidate


def test_the_candidate_is_healthy(candidate: Candidate):
    answer = candidate.request("/healthz")
    assert answer.status == 200, f"GET {candidate.url}/healthz answered {answer}"


def test_the_candidate_itself_answers_a_chat_request(candidate: Candidate):
    # Its own version, not stable's: the header (or the test listener) reached the candidate.
    body = candidate.chat()
    assert body.get("version") == candidate.tag, f"answered by {body.get('version')!r}, not the candidate {candidate.tag}: {body}"


def test_the_answer_is_complete(candidate: Candidate):
    body = candidate.chat()
    assert isinstance(body.get("answer"), str) and body["answer"].strip(), f"an empty answer: {body}"
    assert isinstance(body.get("finish_reason"), str) and body["finish_reason"], f"no finish_reason: {body}"


def test_a_triage_request_gets_a_triage_outcome(candidate: Candidate):
    body = candidate.chat(triage=True)
    assert body.get("triage", {}).get("outcome") in ("success", "failure"), f"no triage outcome: {body}"
