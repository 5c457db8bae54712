"""The release CLI driven as an operator drives it: `python -m release ... --offline` in a
subprocess, in a project directory of its own, with faults injected through the
environment (`CAREPATH_OFFLINE_FAULT`), signals, and a fake Prometheus.

Shared here:

- `Project`: a temporary project (the repository's stack files, plus fast stacks whose
  analysis runs in seconds); `cli(...)` runs a command and answers (code, out, err),
  `spawn(...)` starts one in the background, `state(stack)` reads what the offline stack
  persisted (the workspace's stack file, `applied.json`, the audit log, the lease);
- `project` / `project_at(checkpoint)`: a fresh project, or a copy of one driven to a known
  point (`CHECKPOINTS`), built once per test session and worker;
- `wait_for_audit(...)`: poll the audit log for a line;
- `fake_prometheus(mode)`: a Prometheus on loopback that answers healthy counters, NaN,
  malformed answers, or nothing at all; `closed_url()`: a Prometheus that is down.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Optional

import pytest

from core.paths import UNSET
from core.release import ReleaseState, release_state
from core.settings import SettingsError
from core.signals import CHAT_API
from offline.harness import ROOT
from release.stackfile import StackFile, settings_of

PYTHON = sys.executable
OPERATOR = "tester"
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.production.yaml", "Pulumi.demo.yaml")
FAST_ANALYSIS = {"intervalSeconds": 1, "maxInconclusiveSeconds": 10, "baselineSeconds": 60, "stepBudgetSeconds": 10, "bakeSeconds": 2}
ERRORS_ONLY = {**FAST_ANALYSIS, "signals": [{"name": s.name, "enabled": False} for s in CHAT_API if s.name != "errors"]}
ANALYSIS = "services.chat-api.rollout.analysis"
TRIAGE = {"tag": "v1.0.0", "hosts": ["triage.example.org"], "rollout": {"strategy": "canary", "analysis": FAST_ANALYSIS}}

# Stacks whose analysis runs in seconds: name -> (the stack file it is copied from, its changes).
FAST_STACKS: dict[str, tuple[str, dict[str, Any]]] = {
    "fastcanary": ("staging", {ANALYSIS: FAST_ANALYSIS}),
    # Judged on the error ratio alone, so a fake Prometheus with healthy request counters lets
    # the canary advance (the weight steps a failing `up` can then hit).
    "fasterrors": ("staging", {ANALYSIS: ERRORS_ONLY}),
    # The same for a rolling release.
    "rollingerrors": ("demo", {ANALYSIS: ERRORS_ONLY}),
    # Holds longer before it gives up: the window in which a second driver tries its luck, and a
    # driver of a second service, triage-api, goes ahead.
    "holdcanary": ("staging", {ANALYSIS: {**FAST_ANALYSIS, "maxInconclusiveSeconds": 45}, "services.triage-api": TRIAGE}),
}

# Points a project is driven to once per session (parent, commands), then copied per test.
CHECKPOINTS: dict[str, tuple[Optional[str], tuple[tuple[str, ...], ...]]] = {
    "staging at 1 %": (None, (("start", "staging", "--tag", "v2.0.0"),)),
    "staging at 25 %": ("staging at 1 %", (("advance", "staging", "--weight", "25"),)),
    "production started": (None, (("start", "production", "--tag", "v2.0.0"),)),
    "production switched": ("production started", (("switch", "production"),)),
    "demo started": (None, (("start", "demo", "--tag", "v2.0.0"),)),
    "staging and production": (None, (("status", "staging"), ("status", "production"))),
}


class Result(NamedTuple):
    code: int
    out: str
    err: str

    @property
    def first_line(self) -> str:
        return self.out.splitlines()[0] if self.out.strip() else ""

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"


def closed_url() -> str:
    """A Prometheus URL nothing listens on (a port just bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def tracks(state: Optional[ReleaseState]) -> dict[str, tuple[str, int]]:
    """Who serves what: track -> (tag, weight in %)."""
    assert state is not None, "no release state"
    return {name: (track.tag, track.weight) for name, track in state.tracks}


@dataclass
class State:
    """What an offline stack persisted about one service: the workspace's stack file (`config`,
    the whole of it; `service`, the service's section), what its last successful `up` applied,
    the audit log and the service's lease."""

    config: dict[str, Any]
    wanted: Optional[ReleaseState]  # the stack file's release state of the service (None: the file does not validate)
    applied: Optional[ReleaseState]
    applied_config: dict[str, Any]
    plan: dict[str, Any]
    audit: list[dict[str, Any]]
    lease: Optional[dict[str, Any]]
    service: dict[str, Any]

    @property
    def in_step(self) -> bool:
        """The stack file is what was applied, to the key."""
        return self.wanted == self.applied and self.applied_config == self.config

    def events(self, run: Optional[str] = None) -> list[tuple[str, str]]:
        """(action, event) of the audit log's lines, of one run if given."""
        return [(e["action"], e.get("event", "")) for e in self.audit if run is None or e.get("run") == run]

    def runs(self) -> list[str]:
        """The run ids in the order they first appear."""
        return list(dict.fromkeys(e["run"] for e in self.audit if "run" in e))

    def resources(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.plan["resources"] if r["type"] == type_]


class Project:
    def __init__(self, path: Path):
        self.path = path

    def workspace(self, stack: str) -> Path:
        return self.path / ".carepath" / "offline" / stack

    def stack_file(self, stack: str) -> StackFile:
        """The workspace's copy of the stack file: the one the offline stack deploys."""
        return StackFile(self.workspace(stack) / f"Pulumi.{stack}.yaml")

    def env(self, fault: Optional[str] = None, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key != "CAREPATH_OFFLINE_FAULT"}
        env.update({"PYTHONPATH": str(ROOT), "CAREPATH_OPERATOR": OPERATOR, **extra})
        if fault:
            env["CAREPATH_OFFLINE_FAULT"] = fault
        return env

    def argv(self, args: tuple[str, ...], offline: bool) -> list[str]:
        return [PYTHON, "-m", "release", *args, *(["--offline"] if offline else [])]

    def cli(self, *args: str, fault: Optional[str] = None, env: Optional[dict[str, str]] = None, timeout: float = 120, offline: bool = True) -> Result:
        """`python -m release ARGS --offline` here; stdin is not a terminal."""
        done = subprocess.run(
            self.argv(args, offline), cwd=self.path, env={**self.env(fault), **(env or {})},
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def spawn(self, *args: str, fault: Optional[str] = None, offline: bool = True) -> subprocess.Popen[str]:
        """The same command, in the background."""
        return subprocess.Popen(
            self.argv(args, offline), cwd=self.path, env=self.env(fault),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def status(self, stack: str) -> Result:
        """`status` with a Prometheus that is down (its live-health lines say so at once)."""
        return self.cli("status", stack, "--prometheus", closed_url())

    def audit(self, stack: str) -> list[dict[str, Any]]:
        path = self.workspace(stack) / "audit.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def state(self, stack: str, service: str = "chat-api") -> State:
        workspace = self.workspace(stack)
        config = self.stack_file(stack).config()
        try:
            wanted: Optional[ReleaseState] = release_state(settings_of(config, stack), service)
        except SettingsError:
            wanted = None
        applied = json.loads((workspace / "applied.json").read_text(encoding="utf-8"))
        lease_path = workspace / "leases" / f"{service}.json"
        return State(
            config=config,
            wanted=wanted,
            applied=ReleaseState.from_output(applied["plan"]["outputs"]["releases"].get(service)),
            applied_config=applied["config"],
            plan=applied["plan"],
            audit=self.audit(stack),
            lease=json.loads(lease_path.read_text(encoding="utf-8")) if lease_path.exists() else None,
            service=config["services"][service],
        )

    def git(self, stack: str, *args: str, author: str = "Merge Bot <merge@example.com>") -> str:
        """git in the stack's workspace (its ledger), as another author."""
        name, email = author[:-1].split(" <")
        done = subprocess.run(
            ["git", "-c", f"user.name={name}", "-c", f"user.email={email}", *args],
            cwd=self.workspace(stack), capture_output=True, text=True, check=True,
        )
        return done.stdout


def make_project(path: Path) -> Project:
    path.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        shutil.copyfile(ROOT / name, path / name)
    shutil.copytree(ROOT / "verify", path / "verify")  # the suite the stages' `verify.command` runs
    for name, (base, changes) in FAST_STACKS.items():
        shutil.copyfile(ROOT / f"Pulumi.{base}.yaml", path / f"Pulumi.{name}.yaml")
        # A copy of a stage would branch chat-api's promotion path: the fast stacks are in none.
        StackFile(path / f"Pulumi.{name}.yaml").write({**changes, "services.chat-api.promotion": UNSET})
    return Project(path)


# A promotion rehearsal's project: the repository's path (demo -> staging -> production) with
# production open every day (its weekend freeze would make a test depend on the weekday) and a
# short warm-up; `changes` (stack -> keys) adjust it per test.
REHEARSAL_ENV = {"CAREPATH_REHEARSAL_WARM_UP": "10"}
OPEN_PRODUCTION = {"production": {"services.chat-api.promotion.freeze": []}}


def promotion_project(path: Path, changes: Optional[dict[str, dict[str, Any]]] = None) -> Project:
    project = make_project(path)
    for stack, keys in {**OPEN_PRODUCTION, **(changes or {})}.items():
        StackFile(path / f"Pulumi.{stack}.yaml").write(keys)
    return project


def evidence(project: Project, stack: str, service: str = "chat-api") -> list[dict[str, Any]]:
    """The stage's evidence as the offline stack's ledger keeps it."""
    path = project.workspace(stack) / "evidence" / stack / f"{service}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def promote(project: Project, *args: str, operator: str = OPERATOR, timeout: float = 600) -> Result:
    """`promote-through --service chat-api --offline ARGS` (a scenario among them)."""
    return project.cli("promote-through", "--service", "chat-api", *args, env={**REHEARSAL_ENV, "CAREPATH_OPERATOR": operator}, timeout=timeout)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A project driven to a checkpoint, built once per session (and xdist worker)."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            parent, commands = CHECKPOINTS[name]
            path = tmp_path_factory.mktemp("checkpoint") / "project"
            if parent is None:
                make_project(path)
            else:
                shutil.copytree(get(parent), path, symlinks=True)
            project = Project(path)
            for command in commands:
                if command[0] == "status":
                    result = project.status(command[1])
                else:
                    result = project.cli(*command)
                assert result.code == 0, f"checkpoint {name!r}: {' '.join(command)}: {result}"
            built[name] = path
        return built[name]

    return get


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A fresh project: the repository's stack files and the fast stacks, no workspace yet."""
    return make_project(tmp_path / "project")


@pytest.fixture
def project_at(tmp_path: Path, checkpoints: Callable[[str], Path]) -> Callable[[str], Project]:
    """`project_at("staging at 1 %")`: a copy of a project driven to that checkpoint."""

    def copy(name: str) -> Project:
        path = tmp_path / "at" / "project"
        shutil.copytree(checkpoints(name), path, symlinks=True)
        return Project(path)

    return copy


def wait_for_audit(path: Path, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60, process: Optional[subprocess.Popen[str]] = None, skip: int = 0) -> dict[str, Any]:
    """The first audit line after the first `skip` ones that satisfies `predicate`, waiting up
    to `timeout` s for it (and failing at once, with its output, if `process` ends first)."""
    deadline = time.monotonic() + timeout
    while True:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines()[skip:]:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if predicate(entry):
                    return entry
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the command ended (exit {process.returncode}) before the audit line came\n--- stdout\n{out}--- stderr\n{err}")
        if time.monotonic() > deadline:
            text = path.read_text(encoding="utf-8") if path.exists() else "(no audit log)"
            raise AssertionError(f"no such audit line within {timeout} s in {path}:\n{text}")
        time.sleep(0.1)


def is_started(action: str) -> Callable[[dict[str, Any]], bool]:
    return lambda entry: entry.get("action") == action and entry.get("event") == "started"


def signal_when_started(project: Project, stack: str, action: str, args: tuple[str, ...], signum: int, fault: str = "up-hangs", timeout: float = 60) -> Result:
    """Run `args` with `up` hanging; once the audit log says `action` started (the `up` now
    blocks), send `signum`, and answer how the command ended."""
    before = len(project.audit(stack))
    process = project.spawn(*args, fault=fault)
    try:
        wait_for_audit(project.workspace(stack) / "audit.jsonl", is_started(action), timeout, process, skip=before)
        time.sleep(0.3)  # from the audit line to the hang in `up`
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return Result(process.returncode, out, err)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


# --- a fake Prometheus -------------------------------------------------------------------


TRACKS = ("stable", "canary", "blue", "green")
VERSIONS = ("v1.4.0", "v2.0.0", "v3.0.0")


def _answer(mode: str, path: str, query: str, started_at: float) -> tuple[int, str]:
    now = time.time()
    if mode == "not-json":
        return 200, "not json"
    if path.endswith("/query_range"):
        if mode == "oops":
            return 200, json.dumps({"status": "success", "data": {"resultType": "matrix", "result": "oops"}})
        return 200, json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}})
    if mode == "oops":
        return 200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": "oops"}})
    if mode == "nan":
        result = [{"metric": {"track": track}, "value": [now, "NaN"]} for track in ("canary", "stable")]
        return 200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})
    # healthy: request counters that grow with time for every track (or version), not a single 5xx
    if 'status=~"5.."' in query:
        result = []
    else:
        total = 600.0 * (now - started_at) + 600.0
        label, groups = ("version", VERSIONS) if "by (version" in query else ("track", TRACKS)
        result = [{"metric": {label: group}, "value": [now, f"{total:.1f}"]} for group in groups]
    return 200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})


class FakePrometheus:
    """Answers `/api/v1/query` and `/api/v1/query_range` per `mode`: `healthy`, `nan`,
    `not-json`, `oops` (a result that is not a list); `hang` accepts connections and never
    answers. `queries` counts what it was asked."""

    def __init__(self, mode: str):
        self.mode, self.queries = mode, 0
        self._started = time.time()
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        if mode == "hang":
            self._socket = socket.socket()
            self._socket.bind(("127.0.0.1", 0))
            self._socket.listen(64)
            self._socket.settimeout(0.2)
            port = self._socket.getsockname()[1]
            self._thread = threading.Thread(target=self._accept, daemon=True)
        else:
            fake = self

            class Handler(BaseHTTPRequestHandler):
                def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                    fake.queries += 1
                    parsed = urllib.parse.urlparse(self.path)
                    query = urllib.parse.parse_qs(parsed.query).get("query", [""])[0]
                    code, body = _answer(fake.mode, parsed.path, query, fake._started)
                    data = body.encode()
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

                def log_message(self, *args: Any) -> None:
                    pass

            self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            self._server.daemon_threads = True
            port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{port}"
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            self.queries += 1
            self._held.append(connection)  # read nothing, answer nothing

    def close(self) -> None:
        self._stop.set()
        if self.mode == "hang":
            self._thread.join()
            for connection in self._held:
                connection.close()
            self._socket.close()
        else:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def fake_prometheus() -> Iterator[Callable[[str], FakePrometheus]]:
    servers: list[FakePrometheus] = []

    def start(mode: str) -> FakePrometheus:
        servers.append(FakePrometheus(mode))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}


# --- the fault table's first rows: a fault at one action, then the next command ---------------

Traffic = dict[str, tuple[str, int]]


@dataclass(frozen=True)
class FaultRow:
    """One action of one strategy hit by a fault, and the command an operator runs next."""

    id: str
    checkpoint: Optional[str]  # where the project starts (None: fresh)
    stack: str
    command: tuple[str, ...]
    action: str  # the audit log's name of the action the fault hits
    decided: Traffic  # what the stack file says afterwards (the new decision)
    serving: Traffic  # what the cluster keeps serving (the last successful update)
    unjudged: bool  # a candidate keeps patient traffic with no driver: status must say so
    next: tuple[str, ...]  # the next command, without the fault
    next_action: str
    after: Traffic  # what both say once it is done
    says: str  # its own action's line
    reapplies: bool = True  # it re-applies the stack file first (abort does not: its own write does)


FAULTS = ("up-fails", "SIGINT")


def fault_at_action_then_next_command(project: Project, row: FaultRow, fault: str) -> None:
    """The fault table's shape for `up` failing, SIGINT and SIGTERM at one action: the decision
    is in the stack file (and the ledger), the cluster keeps what it had, the audit log says
    how the action ended, `status` says the two disagree, and the next command re-applies the
    stack file before its own action."""
    stack = row.stack
    if fault == "up-fails":
        result = project.cli(*row.command, fault="up-fails")
        assert result.code == 1, str(result)
        assert "offline fault up-fails: update 1 failed" in result.err, str(result)
        ending = "failed"
    else:
        result = signal_when_started(project, stack, row.action, row.command, SIGNALS[fault])
        assert result.code == 130, str(result)
        assert "interrupted" in result.err, str(result)
        ending = "interrupted"
    assert "Traceback" not in result.err, str(result)

    state = project.state(stack)
    assert tracks(state.wanted) == row.decided, "the stack file holds the new decision"
    assert tracks(state.applied) == row.serving, "the cluster keeps its last successful update"
    run = state.audit[-1]["run"]
    vetted = [("vet", "passed")] if row.action == "start" else []  # a start vets its image first
    assert run and state.events(run) == [*vetted, (row.action, "started"), (row.action, ending)], state.events()
    started_line = state.audit[-2]
    assert started_line.get("release"), started_line
    assert started_line["commit"] == project.git(stack, "rev-parse", "HEAD").strip(), "the decision is committed to the ledger"
    assert state.lease is None, "a driver that stopped gives its lease back"

    status = project.status(stack)
    assert status.code == 0, str(status)
    assert "NOT IN STEP" in status.first_line, status.out
    assert ("NO DRIVER IS JUDGING IT" in status.first_line) == row.unjudged, status.out

    following = project.cli(*row.next)
    assert following.code == 0, str(following)
    lines = following.out.strip().splitlines()
    assert row.says in lines[-1], following.out
    after = project.state(stack)
    assert after.in_step, (tracks(after.wanted), tracks(after.applied))
    assert tracks(after.applied) == row.after
    next_run = after.audit[-1]["run"]
    events = after.events(next_run)
    assert events[-2:] == [(row.next_action, "started"), (row.next_action, "applied")], events
    if row.reapplies:
        assert "re-applying the stack file" in lines[0], following.out
        assert events[:2] == [("reapply", "started"), ("reapply", "applied")], events
