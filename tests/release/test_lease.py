"""The release lease over both stores, on real files and real git repositories: a bare
`origin` and one clone per machine."""

from __future__ import annotations

import datetime
import itertools
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import pytest

from release.lease import (
    FileLeaseStore,
    GitRefLeaseStore,
    Lease,
    LeaseHeld,
    LeaseKeeper,
    LeaseLost,
    LeaseStore,
    LeaseStoreError,
    acquire,
    release,
    renew,
)
from tests.release.conftest import git

NOW = datetime.datetime(2026, 11, 28, 10, 2, 11, tzinfo=datetime.timezone.utc).timestamp()
TTL = 300.0

Machines = Callable[..., LeaseStore]  # each call: a service's lease (chat-api's unless named) as one more machine sees it


pytestmark = pytest.mark.usefixtures("hermetic_git")


def _file_machines(tmp_path: Path) -> Machines:
    return lambda service="chat-api": FileLeaseStore(tmp_path / "workspace" / "leases" / f"{service}.json")


def _git_machines(tmp_path: Path) -> Machines:
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", "origin.git")
    clones = itertools.count()

    def machine(service: str = "chat-api") -> LeaseStore:
        clone = tmp_path / f"machine-{next(clones)}"
        git(tmp_path, "clone", "--quiet", "origin.git", clone.name)
        return GitRefLeaseStore(clone, "demo", service)

    return machine


@pytest.fixture(params=[_file_machines, _git_machines], ids=["file", "git"])
def machines(request: pytest.FixtureRequest, tmp_path: Path) -> Machines:
    return request.param(tmp_path)


def _take(
    store: LeaseStore, run: str, now: float = NOW, holder: str = "alice", command: str = "run v2.0.0",
    break_lease: bool = False, pid: int | None = None, service: str = "chat-api",
) -> Lease:
    return acquire(store, "demo", service, run, holder, command, TTL, now, break_lease=break_lease, pid=pid)


def test_acquire_on_an_empty_store_takes_the_lease(machines: Machines) -> None:
    store = machines()
    lease = _take(store, "3f2a9c")
    assert (lease.stack, lease.service, lease.run, lease.holder, lease.command) == ("demo", "chat-api", "3f2a9c", "alice", "run v2.0.0")
    assert (lease.host, lease.pid) == (socket.gethostname(), os.getpid())
    assert (lease.started, lease.expires) == (NOW, NOW + TTL)
    assert store.read() == lease
    assert machines().read() == lease  # every machine sees it


def test_a_second_run_is_refused_with_who_holds_the_lease(machines: Machines) -> None:
    held = _take(machines(), "3f2a9c")
    with pytest.raises(LeaseHeld) as refused:
        _take(machines(), "77b1e0", NOW + 10, holder="bob", command="advance")
    assert refused.value.lease == held
    message = str(refused.value)
    for expected in ("stack demo, service chat-api", "alice", "3f2a9c", "`run v2.0.0`", "since 2026-11-28 10:02:11 UTC", "--break-lease"):
        assert expected in message


def test_each_service_of_a_stack_has_a_lease_of_its_own(machines: Machines) -> None:
    chat_api = _take(machines(), "3f2a9c")
    triage = _take(machines("triage-api"), "77b1e0", NOW + 10, holder="bob", service="triage-api")
    assert (machines().read(), machines("triage-api").read()) == (chat_api, triage), "a release of each service at once"
    with pytest.raises(LeaseHeld, match="stack demo, service triage-api: a release is in flight: held by bob"):
        _take(machines("triage-api"), "0c0ffe", NOW + 20, holder="carol", service="triage-api")
    release(machines("triage-api"), triage)
    assert machines("triage-api").read() is None and machines().read() == chat_api


def test_the_same_run_rerun_renews_its_own_lease(machines: Machines) -> None:
    store = machines()
    first = _take(store, "3f2a9c")
    again = _take(machines(), "3f2a9c", NOW + 60, pid=4242)
    assert (again.started, again.expires, again.pid) == (first.started, NOW + 60 + TTL, 4242)
    assert store.read() == again


def test_an_expired_lease_is_taken_over(machines: Machines) -> None:
    _take(machines(), "3f2a9c")
    store = machines()
    taken = _take(store, "77b1e0", NOW + TTL, holder="bob")
    assert (taken.run, taken.holder, taken.started) == ("77b1e0", "bob", NOW + TTL)
    assert store.read() == taken


def test_break_lease_takes_a_live_lease(machines: Machines) -> None:
    _take(machines(), "3f2a9c")
    store = machines()
    taken = _take(store, "77b1e0", NOW + 1, holder="bob", break_lease=True)
    assert machines().read() == taken


def test_renew_moves_the_expiry(machines: Machines) -> None:
    store = machines()
    lease = _take(store, "3f2a9c")
    renewed = renew(store, lease, TTL, NOW + 100)
    assert renewed == replace(lease, expires=NOW + 100 + TTL)
    assert machines().read() == renewed
    assert renew(store, renewed, TTL, NOW + 200).expires == NOW + 200 + TTL


def test_renew_after_the_lease_was_broken_raises_lease_lost_naming_the_new_holder(machines: Machines) -> None:
    store = machines()
    lease = _take(store, "3f2a9c")
    _take(machines(), "77b1e0", NOW + 1, holder="bob", break_lease=True)
    with pytest.raises(LeaseLost) as lost:
        renew(store, lease, TTL, NOW + 2)
    assert lost.value.lease is not None and lost.value.lease.holder == "bob"
    assert "bob" in str(lost.value) and "77b1e0" in str(lost.value)


def test_release_clears_the_lease(machines: Machines) -> None:
    store = machines()
    release(store, _take(store, "3f2a9c"))
    assert store.read() is None
    assert machines().read() is None
    assert _take(machines(), "77b1e0", NOW + 1).run == "77b1e0"


def test_releasing_a_lease_no_longer_ours_leaves_the_others_alone(machines: Machines) -> None:
    store = machines()
    ours = _take(store, "3f2a9c")
    theirs = _take(machines(), "77b1e0", NOW + 1, holder="bob", break_lease=True)
    release(store, ours)
    assert machines().read() == theirs


def test_of_two_runs_acquiring_at_once_exactly_one_wins(machines: Machines) -> None:
    stores = [machines(), machines()]
    start = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def race(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = _take(stores[i], f"run-{i}")
        except LeaseHeld as held:
            outcomes[i] = held

    threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if isinstance(o, Lease)]
    refused = [o for o in outcomes if isinstance(o, LeaseHeld)]
    assert len(winners) == 1 and len(refused) == 1
    assert refused[0].lease == winners[0] == machines().read()


def test_describe_says_when_the_lease_expires_or_expired() -> None:
    lease = Lease("demo", "chat-api", "3f2a9c", "alice", "host-1", 123, "run v2.0.0", NOW, NOW + 600)
    assert lease.describe(NOW + 100) == (
        "held by alice on host-1 (pid 123), run 3f2a9c, `run v2.0.0`, since 2026-11-28 10:02:11 UTC, expires in 8 m 20 s"
    )
    assert lease.describe(NOW + 720).endswith("expired 2 m ago")


def test_describe_says_when_the_holding_process_is_gone() -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    here = socket.gethostname()
    assert Lease("demo", "chat-api", "3f2a9c", "alice", here, finished.pid, "advance", NOW, NOW + 60).describe(NOW).endswith(
        "; that process is gone"
    )
    assert "gone" not in Lease("demo", "chat-api", "3f2a9c", "alice", here, os.getpid(), "advance", NOW, NOW + 60).describe(NOW)
    assert "gone" not in Lease("demo", "chat-api", "3f2a9c", "alice", "elsewhere", finished.pid, "advance", NOW, NOW + 60).describe(NOW)


def test_a_lease_round_trips_through_json() -> None:
    lease = Lease("demo", "chat-api", "3f2a9c", "alice", "host-1", 123, "run v2.0.0", NOW, NOW + 600.25)
    assert Lease.from_json(lease.to_json()) == lease
    with pytest.raises(ValueError, match="not a release lease"):
        Lease.from_json('{"stack": "demo"}')


def _until(condition: Callable[[], object], seconds: float = 30) -> None:
    """Wait for a keeper's thread to act: timings are the thread's, never the test's to guess."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the keeper did not act in time"
        time.sleep(0.02)


def _until_lost(keeper: LeaseKeeper) -> None:
    """Check the keeper until it raises the LeaseLost its thread found."""
    _until(lambda: keeper.check() is not None)  # check() returns nothing until it raises


def test_the_keeper_renews_while_it_runs_and_releases_on_exit(machines: Machines) -> None:
    store = machines()
    with LeaseKeeper(store, "demo", "chat-api", "3f2a9c", "alice", "run v2.0.0", ttl=0.6) as keeper:
        first = keeper.lease
        _until(lambda: keeper.lease.expires > first.expires)  # renewed, however slow git is
        keeper.check()
        seen = machines().read()
        assert seen is not None and seen.run == "3f2a9c" and seen.started == first.started
        assert first.expires < seen.expires <= keeper.lease.expires
    assert machines().read() is None


def test_the_keeper_refuses_a_second_run(machines: Machines) -> None:
    with LeaseKeeper(machines(), "demo", "chat-api", "3f2a9c", "alice", "run v2.0.0", ttl=30):
        with pytest.raises(LeaseHeld), LeaseKeeper(machines(), "demo", "chat-api", "77b1e0", "bob", "advance", ttl=30):
            pytest.fail("a second keeper entered")


def test_the_keeper_reports_a_broken_lease_and_leaves_the_new_holder_alone(machines: Machines) -> None:
    other = machines()
    with LeaseKeeper(machines(), "demo", "chat-api", "3f2a9c", "alice", "run v2.0.0", ttl=0.3) as keeper:
        keeper.check()
        theirs = acquire(other, "demo", "chat-api", "77b1e0", "bob", "advance", 60, time.time(), break_lease=True)
        with pytest.raises(LeaseLost, match="bob"):
            _until_lost(keeper)  # the next renewal finds bob's lease
    assert other.read() == theirs


def test_the_keeper_gives_up_after_three_failed_renewals_without_hiding_the_runs_error(tmp_path: Path) -> None:
    store = _git_machines(tmp_path)()
    with pytest.raises(RuntimeError, match="the run's own failure"):
        with LeaseKeeper(store, "demo", "chat-api", "3f2a9c", "alice", "run v2.0.0", ttl=0.15) as keeper:
            shutil.move(tmp_path / "origin.git", tmp_path / "unreachable.git")
            # Three failed renewals, ttl/3 apart, however slow git is on a busy machine.
            with pytest.raises(LeaseLost, match="could not renew its release lease 3 times"):
                _until_lost(keeper)
            raise RuntimeError("the run's own failure")


def test_git_store_errors_name_what_failed(tmp_path: Path) -> None:
    store = _git_machines(tmp_path)()
    shutil.rmtree(tmp_path / "origin.git")
    with pytest.raises(LeaseStoreError, match="git fetch"):
        store.read()
