"""The release lease: one driver at a time per service of a stack, seen by every machine.

Two drivers moving one service's weights would each judge traffic the other is
changing. A driver command holds the lease of its stack and service for its whole
run and renews it while it runs; a second driver of that service is refused with
who holds it, since when and for what, while a driver of another service of the
stack goes ahead (its release keys and signals are its own). A lease that is not renewed expires, so a crashed driver does not block
the stack for good, and `--break-lease` takes a live one over; the holder that lost
it finds out before its next write and stops.

The lease lives where every machine driving the stack sees it: for a real stack,
a ref `refs/carepath/leases/<stack>/<service>` on the repository's remote
(`GitRefLeaseStore`); for an offline rehearsal, a file per service in its
workspace (`FileLeaseStore`). Both replace it only by
compare-and-swap, so of two drivers starting together exactly one wins. Expiry is
judged on each machine's clock: keep the TTL well above any clock skew.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Callable, Optional, Protocol

from release.ledger import git_env, run_git
from release.stackfile import exclusive_lock

_ACQUIRE_ATTEMPTS = 5
_RENEW_FAILURES = 3


@dataclass(frozen=True)
class Lease:
    stack: str
    service: str
    run: str  # the driver run's id
    holder: str  # the operator, as the audit log names them
    host: str
    pid: int
    command: str  # e.g. "run v2.0.0"
    started: float  # epoch seconds, when first acquired
    expires: float  # epoch seconds; renewals move it

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Lease:
        try:
            data = json.loads(text)
            return cls(
                stack=str(data["stack"]), service=str(data["service"]), run=str(data["run"]), holder=str(data["holder"]), host=str(data["host"]),
                pid=int(data["pid"]), command=str(data["command"]),
                started=float(data["started"]), expires=float(data["expires"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"not a release lease: {text[:200]!r}") from error

    def describe(self, now: float) -> str:
        """One line for an operator deciding whether to wait or break it."""
        since = datetime.datetime.fromtimestamp(self.started, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        left = self.expires - now
        expiry = f"expires in {_span(left)}" if left > 0 else f"expired {_span(-left)} ago"
        line = f"held by {self.holder} on {self.host} (pid {self.pid}), run {self.run}, `{self.command}`, since {since}, {expiry}"
        return line + ("; that process is gone" if self.gone() else "")

    def live(self, now: float) -> bool:
        """Not expired: its holder renewed it within its lifetime."""
        return self.expires > now

    def gone(self) -> bool:
        """The holder was a process on this machine that no longer runs (a killed driver)."""
        if self.host != socket.gethostname():
            return False  # another machine's process: no way to tell from here
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # alive, another user's
        return False


def _span(seconds: float) -> str:
    whole = int(seconds)
    hours, minutes, secs = whole // 3600, whole % 3600 // 60, whole % 60
    parts = [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "m"), (0 if hours else secs, "s")) if n]
    return " ".join(parts) or "0 s"


class LeaseHeld(Exception):
    """Another run holds a live lease on the stack's service."""

    def __init__(self, lease: Lease, now: float):
        super().__init__(
            f"stack {lease.stack}, service {lease.service}: a release is in flight: {lease.describe(now)}; "
            "wait for it, or take it over with --break-lease"
        )
        self.lease = lease


class LeaseLost(Exception):
    """The lease stopped being ours while we held it: broken, taken, or not renewable.
    `lease` is whoever holds it now (None: nobody)."""

    def __init__(self, message: str, lease: Optional[Lease] = None):
        super().__init__(message)
        self.lease = lease


class LeaseStoreError(RuntimeError):
    """The lease could not be read or written (remote unreachable, corrupt lease, ...)."""


class LeaseStore(Protocol):
    def read(self) -> Optional[Lease]: ...

    def swap(self, expected: Optional[Lease], new: Optional[Lease]) -> bool:
        """Atomically replace the stored lease with `new` (None deletes) if the stored one
        equals `expected` (None: none stored); False otherwise."""
        ...


class FileLeaseStore:
    """A JSON file, for stacks that live in one workspace directory (offline rehearsals: one
    file per service). Swaps hold an exclusive `flock` on `<path>.lock` and replace the file
    whole, so a reader never sees half a lease."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = path.with_name(path.name + ".lock")

    def read(self) -> Optional[Lease]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return Lease.from_json(text)
        except ValueError as error:
            raise LeaseStoreError(f"{self.path}: {error}; remove it if no release is running") from error

    def swap(self, expected: Optional[Lease], new: Optional[Lease]) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self._lock):
            if self.read() != expected:
                return False
            if new is None:
                self.path.unlink(missing_ok=True)
            else:
                written = self.path.with_name(self.path.name + ".tmp")
                written.write_text(new.to_json(), encoding="utf-8")
                os.replace(written, self.path)
            return True


class GitRefLeaseStore:
    """The lease as ref `refs/carepath/leases/<stack>/<service>` on the repository's remote,
    pointing to a commit (over the empty tree) whose message is the lease's JSON.
    Every machine that can push the stack's config sees it, with nothing else to run;
    `git push --force-with-lease` is the compare-and-swap."""

    def __init__(self, repo: Path, stack: str, service: str, remote: str = "origin"):
        self.repo, self.remote = repo, remote
        self.name = f"{stack}/{service}"
        self.ref = f"refs/carepath/leases/{self.name}"
        self._env = git_env(repo)
        self._sha_of: dict[Lease, str] = {}  # leases read or written here -> their commit

    def read(self) -> Optional[Lease]:
        # one fetch of every lease ref (a consistent snapshot, deletions pruned) into a local mirror
        self._git("fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head",
                  self.remote, "+refs/carepath/leases/*:refs/carepath/remote-leases/*")
        found = self._run("rev-parse", "--quiet", "--verify", f"refs/carepath/remote-leases/{self.name}^{{commit}}")
        if found.returncode != 0:
            return None
        sha = found.stdout.strip()
        try:
            lease = Lease.from_json(self._git("show", "--no-patch", "--format=%B", sha))
        except ValueError as error:
            raise LeaseStoreError(
                f"{self.remote} {self.ref}: {error}; if no release is running, delete it: git push {self.remote} :{self.ref}"
            ) from error
        self._sha_of[lease] = sha
        return lease

    def swap(self, expected: Optional[Lease], new: Optional[Lease]) -> bool:
        if expected is None:
            old = ""
        elif expected in self._sha_of or self.read() == expected:
            old = self._sha_of[expected]
        else:
            return False
        source = self._commit(new) if new is not None else ""
        pushed = self._run("push", "--quiet", f"--force-with-lease={self.ref}:{old}", self.remote, f"{source}:{self.ref}")
        if pushed.returncode != 0:
            if self._remote_sha() != (old or None):
                return False  # the ref moved: someone else swapped first
            raise LeaseStoreError(f"git push {self.remote} {self.ref} failed in {self.repo}: {pushed.stderr.strip()}")
        if expected is not None:
            self._sha_of.pop(expected, None)
        if new is not None:
            self._sha_of[new] = source
        return True

    def _commit(self, lease: Lease) -> str:
        empty_tree = self._git("hash-object", "-t", "tree", "-w", "--stdin", stdin="").strip()
        return self._git("commit-tree", empty_tree, "-F", "-", stdin=lease.to_json()).strip()

    def _remote_sha(self) -> Optional[str]:
        listed = self._git("ls-remote", self.remote, self.ref)
        return next((line.split("\t")[0] for line in listed.splitlines() if line.endswith(f"\t{self.ref}")), None)

    def _git(self, *args: str, stdin: Optional[str] = None) -> str:
        done = self._run(*args, stdin=stdin)
        if done.returncode != 0:
            raise LeaseStoreError(f"git {' '.join(args)} failed in {self.repo}: {done.stderr.strip()}")
        return done.stdout

    def _run(self, *args: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess[str]:
        return run_git(self.repo, self._env, *args, stdin=stdin)


def acquire(
    store: LeaseStore, stack: str, service: str, run: str, holder: str, command: str, ttl: float, now: float,
    break_lease: bool = False, host: Optional[str] = None, pid: Optional[int] = None,
) -> Lease:
    """Take the lease of the stack's service: when none is held, it has expired, or
    `break_lease`; renew it when this run already holds it (a rerun resuming the same run). Another run's live
    lease raises LeaseHeld. A lost race re-reads and decides again."""
    host = host or socket.gethostname()
    pid = os.getpid() if pid is None else pid
    for _ in range(_ACQUIRE_ATTEMPTS):
        current = store.read()
        if current is not None and current.live(now) and not break_lease:
            if current.run != run:
                raise LeaseHeld(current, now)
            new = replace(current, holder=holder, host=host, pid=pid, command=command, expires=now + ttl)
        else:
            new = Lease(stack, service, run, holder, host, pid, command, started=now, expires=now + ttl)
        if store.swap(current, new):
            return new
    raise LeaseStoreError(f"stack {stack}, service {service}: the lease changed under each of {_ACQUIRE_ATTEMPTS} attempts to take it; try again")


def renew(store: LeaseStore, lease: Lease, ttl: float, now: float) -> Lease:
    """Move the lease's expiry to `now + ttl`; LeaseLost when it is no longer `lease`."""
    renewed = replace(lease, expires=now + ttl)
    if store.swap(lease, renewed):
        return renewed
    holder = store.read()
    now_held = f"now {holder.describe(now)}" if holder else "nobody holds it now"
    raise LeaseLost(f"stack {lease.stack}, service {lease.service}: run {lease.run} lost its release lease; {now_held}", holder)


def release(store: LeaseStore, lease: Lease) -> None:
    """Give the lease up; if it is no longer ours, leave whoever has it alone."""
    store.swap(lease, None)


class LeaseKeeper:
    """Holds the lease of a stack's service for a driver command: acquires it on entry, renews it
    every `ttl / 3` seconds from a daemon thread, releases it on exit. The driver calls
    `check()` before every write, so a run whose lease was broken stops before it moves
    anything."""

    lease: Lease  # the current lease, from `__enter__` on

    def __init__(
        self, store: LeaseStore, stack: str, service: str, run: str, holder: str, command: str, ttl: float,
        break_lease: bool = False, clock: Callable[[], float] = time.time,
    ):
        self.store, self.stack, self.service, self.run, self.holder, self.command = store, stack, service, run, holder, command
        self.ttl, self.break_lease, self.clock = ttl, break_lease, clock
        self._lost: Optional[LeaseLost] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=f"lease-{stack}-{service}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self.lease = acquire(self.store, self.stack, self.service, self.run, self.holder, self.command, self.ttl, self.clock(), self.break_lease)
        self._thread.start()
        return self

    def check(self) -> None:
        if self._lost is not None:
            raise self._lost

    def __exit__(self, kind: Optional[type[BaseException]], error: Optional[BaseException], trace: Optional[TracebackType]) -> None:
        self._stop.set()
        self._thread.join()
        try:
            release(self.store, self.lease)
        except (LeaseStoreError, OSError):
            if kind is None:
                raise  # otherwise the run's own error is the one to see

    def _keep(self) -> None:
        failures = 0
        while not self._stop.wait(self.ttl / 3):
            try:
                self.lease = renew(self.store, self.lease, self.ttl, self.clock())
                failures = 0
            except LeaseLost as lost:
                self._lost = lost
                return
            except (LeaseStoreError, OSError) as error:
                failures += 1
                if failures == _RENEW_FAILURES:
                    self._lost = LeaseLost(
                        f"stack {self.stack}, service {self.service}: run {self.run} could not renew its release lease "
                        f"{_RENEW_FAILURES} times in a row ({error}); another driver may take it once it expires"
                    )
                    return
