"""An example verification suite: what a stage runs against its candidate before any patient
traffic reaches it, from the project directory, as `python -m pytest -q -c verify/pytest.ini verify`.
A team replaces it with its own (a k6 or locust script works as well: the contract is the
environment below and the exit status, 0 for a candidate fit for patients).

The driver passes the candidate in the environment:

- CAREPATH_VERIFY_URL: base URL, no trailing slash (the canary: the service's public URL; blue/green:
  its test listener's);
- CAREPATH_VERIFY_HEADER: `name: value`, the header that reaches the candidate (the canary's tester
  header), or empty (blue/green: the test listener reaches only the candidate);
- CAREPATH_VERIFY_TAG, CAREPATH_VERIFY_STACK, CAREPATH_VERIFY_SERVICE: the candidate's image tag, the
  stage's stack and the service.

Only the standard library: the suite must run wherever the driver does.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Optional

import pytest

TIMEOUT_SECONDS = 10.0
REQUIRED = ("CAREPATH_VERIFY_URL", "CAREPATH_VERIFY_TAG")
QUESTION = "I have had a mild headache since this morning. What should I do?"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.status} {self.body[:500].decode(errors='replace')}"


@dataclass(frozen=True)
class Candidate:
    """The candidate under test, from the environment, and a client for it."""

    url: str
    headers: dict[str, str]  # what reaches the candidate: the tester header, or nothing
    tag: str
    stack: str
    service: str

    def request(self, path: str, body: Optional[dict[str, Any]] = None) -> Answer:
        """GET `path` (POST `body` as JSON when given); any status answers, only a failure to connect raises."""
        data = None if body is None else json.dumps(body).encode()
        headers = {**self.headers, **({"Content-Type": "application/json"} if data is not None else {})}
        request = urllib.request.Request(f"{self.url}{path}", data=data, headers=headers)
        # https: verified against the system's trust store, as a client of the service would.
        context = ssl.create_default_context() if self.url.startswith("https://") else None
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=context) as response:  # noqa: S310 (the URL is the driver's)
                return Answer(response.status, response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read())
        except OSError as error:  # refused, timed out, TLS: the candidate cannot be reached at all
            reason = getattr(error, "reason", error)
        # Outside the `except`: the failure says why, without urllib's chain of tracebacks.
        pytest.fail(f"{request.get_method()} {request.full_url}: {reason}", pytrace=False)

    def chat(self, triage: bool = False) -> dict[str, Any]:
        """A question to `/v1/chat`; its answer's JSON, once it is a 200."""
        answer = self.request("/v1/chat", {"messages": [{"role": "user", "content": QUESTION}], "triage": triage})
        assert answer.status == 200, f"POST {self.url}/v1/chat answered {answer}"
        return answer.json()


def _header(text: str) -> dict[str, str]:
    if not text.strip():
        return {}
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise pytest.UsageError(f"CAREPATH_VERIFY_HEADER={text!r}: expected `name: value` (for example `x-version: canary`) or nothing")
    return {name.strip(): value.strip()}


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to start without a candidate to test: a usage error, not a test failure per test."""
    missing = [name for name in REQUIRED if not os.environ.get(name, "").strip()]
    if missing:
        raise pytest.UsageError(
            f"{' and '.join(missing)} not set: this suite tests a deployed candidate, run by a promotion stage "
            "(CAREPATH_VERIFY_URL, the candidate's base URL; CAREPATH_VERIFY_TAG, its image tag)"
        )
    _header(os.environ.get("CAREPATH_VERIFY_HEADER", ""))


@pytest.fixture(scope="session")
def candidate() -> Candidate:
    environ = os.environ
    return Candidate(
        url=environ["CAREPATH_VERIFY_URL"].strip().rstrip("/"),
        headers=_header(environ.get("CAREPATH_VERIFY_HEADER", "")),
        tag=environ["CAREPATH_VERIFY_TAG"].strip(),
        stack=environ.get("CAREPATH_VERIFY_STACK", ""),
        service=environ.get("CAREPATH_VERIFY_SERVICE", ""),
    )
