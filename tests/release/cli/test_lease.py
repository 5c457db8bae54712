"""The release lease through the CLI: a driver killed mid-action, and two drivers at once."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from typing import Optional

import pytest

from tests.release.cli.conftest import Project, Traffic, closed_url, signal_when_started, tracks, wait_for_audit, wait_until

# The killed driver's lease: long enough that the next command surely starts while it is live;
# longer where it is broken, so that it is surely broken live.
LEASE_SECONDS = {"expiry": "8", "break": "30"}


@dataclass(frozen=True)
class KillRow:
    id: str
    checkpoint: Optional[str]
    stack: str
    command: tuple[str, ...]
    action: str
    decided: Traffic
    serving: Traffic
    next: tuple[str, ...]  # `{prometheus}` is replaced by a healthy fake Prometheus's URL
    after: Traffic
    says: str
    take_over: str  # "expiry": wait for the lease to expire; "break": --break-lease (--yes)


ROWS = [
    KillRow(
        "canary-advance", "staging at 1 %", "staging", ("advance", "staging"), "advance",
        decided={"stable": ("v1.4.0", 95), "canary": ("v2.0.0", 5)}, serving={"stable": ("v1.4.0", 99), "canary": ("v2.0.0", 1)},
        next=("advance", "staging"), after={"stable": ("v1.4.0", 95), "canary": ("v2.0.0", 5)},
        says="staging/chat-api: nothing else done: the cluster now has the stack file's last decision; `advance` again goes on from there",
        take_over="expiry",
    ),
    KillRow(
        "blue-green-switch", "production started", "production", ("switch", "production"), "switch",
        decided={"blue": ("v1.4.0", 0), "green": ("v2.0.0", 100)}, serving={"blue": ("v1.4.0", 100), "green": ("v2.0.0", 0)},
        next=("switch", "production"), after={"blue": ("v1.4.0", 0), "green": ("v2.0.0", 100)},
        says="production/chat-api: nothing else done: the cluster now has the stack file's last decision; `switch` again goes on from there",
        take_over="break",
    ),
    KillRow(
        "rolling-start", None, "rollingerrors", ("start", "rollingerrors", "--tag", "v2.0.0"), "start",
        decided={"stable": ("v2.0.0", 100)}, serving={"stable": ("v1.4.0", 100)},
        next=("run", "rollingerrors", "--tag", "v2.0.0", "--prometheus", "{prometheus}"), after={"stable": ("v2.0.0", 100)},
        says="v2.0.0 on rollingerrors/chat-api: promoted", take_over="break",
    ),
]


def kill_mid_action(project: Project, row: KillRow) -> dict:
    """SIGKILL the row's command while its `up` hangs: answers the lease it left."""
    killed = signal_when_started(project, row.stack, row.action, (*row.command, "--lease-seconds", LEASE_SECONDS[row.take_over]), signal.SIGKILL)
    assert killed.code == -signal.SIGKILL, str(killed)
    state = project.state(row.stack)
    run = state.audit[-1]["run"]
    vetted = [("vet", "passed")] if row.action == "start" else []  # a start vets its image first
    assert state.events(run) == [*vetted, (row.action, "started")], "a killed driver audits nothing more"
    assert tracks(state.wanted) == row.decided and tracks(state.applied) == row.serving
    assert state.lease is not None and state.lease["run"] == run and state.lease["holder"] == "tester"
    return state.lease


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_a_killed_driver_keeps_its_lease_until_it_expires_or_is_broken_then_the_next_command_re_applies(project, project_at, fake_prometheus, row):
    project = project_at(row.checkpoint) if row.checkpoint else project
    lease = kill_mid_action(project, row)
    command = " ".join(row.command[:1] + row.command[2:])  # e.g. `advance`, `start v2.0.0`
    command = command.replace("--tag ", "")
    following = tuple(arg.replace("{prometheus}", fake_prometheus("healthy").url) for arg in row.next)

    refused = project.cli(*following)
    assert time.time() < lease["expires"], "the refusal came while the lease was live"
    assert refused.code == 3, str(refused)
    for said in ("held by tester", f"run {lease['run']}", f"`{command}`", "--break-lease", "that process is gone"):
        assert said in refused.err, f"{said!r} not in: {refused.err}"
    state = project.state(row.stack)
    assert tracks(state.wanted) == row.decided and tracks(state.applied) == row.serving, "a refused command changes nothing"

    status = project.status(row.stack)
    assert "NOT IN STEP" in status.first_line, status.out
    assert any(line.startswith("  lease:") and "that process is gone" in line for line in status.out.splitlines()), status.out

    if row.take_over == "expiry":
        wait_until(lambda: time.time() > lease["expires"] + 0.2, 30, "the killed driver's lease expires")
        done = project.cli(*following)
    else:
        unconfirmed = project.cli(*following, "--break-lease")
        assert unconfirmed.code == 2, str(unconfirmed)
        assert "confirm with --yes" in unconfirmed.err and "Traceback" not in unconfirmed.err, str(unconfirmed)
        assert project.state(row.stack).lease == lease, "an unconfirmed --break-lease leaves the lease alone"
        assert time.time() < lease["expires"] - 10, "the lease is broken while it is live"
        done = project.cli(*following, "--break-lease", "--yes")
    assert done.code == 0, str(done)
    lines = done.out.strip().splitlines()
    assert "re-applying the stack file" in lines[0], done.out
    assert lines[-1] == row.says, done.out
    after = project.state(row.stack)
    assert after.in_step and tracks(after.applied) == row.after
    assert after.lease is None
    events = after.events(after.audit[-1]["run"])
    assert ("reapply", "started") in events and ("reapply", "applied") in events, events


def test_status_says_no_driver_is_judging_a_canary_whose_drivers_process_is_gone(project_at):
    """The killed driver's lease is live for a while, but its process is gone (and `status`
    knows it: it says so on the lease line): 1 % of patients are on a canary nobody judges."""
    project = project_at("staging at 1 %")
    kill_mid_action(project, ROWS[0])
    status = project.status("staging")
    assert "that process is gone" in status.out, status.out
    assert "NO DRIVER IS JUDGING IT" in status.first_line, status.out


def test_a_second_driver_is_refused_while_a_run_holds_the_lease_and_a_driver_of_another_service_goes_ahead(project):
    driver_a = project.spawn("run", "holdcanary", "--tag", "v2.0.0", "--prometheus", closed_url(), "--lease-seconds", "30")
    try:
        start = wait_for_audit(project.workspace("holdcanary") / "audit.jsonl", lambda e: e["action"] == "start" and e.get("event") == "applied", 90, driver_a)
        run_a = start["run"]
        at_1 = {"stable": ("v1.4.0", 99), "canary": ("v2.0.0", 1)}

        advance = project.cli("advance", "holdcanary")
        assert advance.code == 3, str(advance)
        assert "stack holdcanary, service chat-api: a release is in flight" in advance.err, advance.err
        assert f"run {run_a}" in advance.err and "`run v2.0.0`" in advance.err and "--break-lease" in advance.err, advance.err
        assert "Traceback" not in advance.err

        other_run = project.cli("run", "holdcanary", "--tag", "v3.0.0", "--prometheus", closed_url())
        assert other_run.code == 3, str(other_run)
        assert f"run {run_a}" in other_run.err

        deploy = project.cli("deploy", "holdcanary")
        assert deploy.code == 0, str(deploy)
        assert "not deployed: the release of chat-api is held by" in deploy.out and f"run {run_a}" in deploy.out, deploy.out

        triage = project.cli("start", "holdcanary", "--service", "triage-api", "--tag", "v1.1.0")
        assert triage.code == 0, f"another service's release goes ahead: {triage}"
        assert triage.out.splitlines() == ["holdcanary/triage-api: canary v1.1.0 at 1 %"], triage.out

        status = project.status("holdcanary")
        assert status.code == 0
        headlines = status.out.splitlines()[:2]
        assert headlines[0].startswith("stack holdcanary, service chat-api: release v2.0.0 in flight"), status.out
        assert "NO DRIVER IS JUDGING IT" not in headlines[0], status.out
        assert headlines[1].startswith("stack holdcanary, service triage-api: v1.1.0 takes 1 % of patient traffic and NO DRIVER IS JUDGING IT"), status.out
        assert any(line.startswith("  lease:") and f"run {run_a}" in line and "`run v2.0.0`" in line for line in status.out.splitlines()), status.out
        assert "service triage-api:" in status.out.splitlines(), "each service's details under its name"
        one = project.cli("status", "holdcanary", "--service", "triage-api", "--prometheus", closed_url())
        assert one.first_line == headlines[1] and "chat-api" not in one.out, one.out

        state = project.state("holdcanary")
        assert tracks(state.wanted) == at_1 and tracks(state.applied) == at_1, "the other drivers moved nothing of chat-api's"
        assert driver_a.poll() is None, "driver A was still judging through all of it"
        aborted = project.cli("abort", "holdcanary", "--service", "triage-api")
        assert aborted.code == 0 and aborted.out.splitlines()[-1] == "holdcanary/triage-api: all traffic back on stable v1.0.0; canary v1.1.0 removed", str(aborted)
        out, err = driver_a.communicate(timeout=120)
    finally:
        if driver_a.poll() is None:
            driver_a.kill()
            driver_a.communicate()
    assert driver_a.returncode == 1, f"{out}\n{err}"
    assert "v2.0.0 on holdcanary/chat-api: rolled back (inconclusive for 45 s" in out, out

    state = project.state("holdcanary")
    triage_state = project.state("holdcanary", "triage-api")
    assert [run for run in state.runs() if any(e.get("run") == run and e.get("service") == "chat-api" for e in state.audit)] == [run_a], "only driver A wrote chat-api's decisions"
    assert state.in_step and tracks(state.applied) == {"stable": ("v1.4.0", 100)}
    assert triage_state.in_step and tracks(triage_state.applied) == {"stable": ("v1.0.0", 100)}, "each release ended as its own driver decided"
    assert state.lease is None and triage_state.lease is None
    messages = [m.strip() for m in project.git("holdcanary", "log", "--format=%B%x00").split("\x00") if m.strip()]
    ours = [m for m in messages if m.startswith("release holdcanary/chat-api:")]
    assert ours and all(f"run {run_a}" in m for m in ours), messages
    assert sum(m.startswith("release holdcanary/triage-api:") for m in messages) == 2, messages
