"""The stack file in git is the release's ledger.

Every change the release driver makes to `Pulumi.<stack>.yaml` is committed, one
commit per action with the decision and its evidence in the message, and, when
the repository has a remote, pushed to its default branch: the deploy workflow on
that branch then always sees the release where it stands, and `git log` of the
stack file is the release's history. Before an action reads the stack file, the
ledger brings in what others merged meanwhile, so no action decides on stale
config and no push overwrites someone else's change. Drivers of two services in one
checkout take turns: each holds the ledger (`locked`) from its sync to its commit, so
neither commits the other's write under its own decision.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import ContextManager, Optional, Protocol

from release.stackfile import exclusive_lock

_IDENTITY = {"name": "carepath-release", "email": "carepath-release@localhost"}
_PUSH_ATTEMPTS = 3


def run_git(repo: Path, env: dict[str, str], *args: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess[str]:
    """`git <args>` in `repo`; the caller judges the exit code."""
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, input=stdin,
        capture_output=True, text=True, encoding="utf-8", check=False,
    )


def git_env(repo: Path) -> dict[str, str]:
    """The environment for git in `repo`: the identity git is configured with (the
    operator's, or the CI workflow's) when there is one, else `carepath-release`, so a
    release never stops because a machine has no `user.name`."""
    env = dict(os.environ)
    configured = run_git(repo, env, "config", "--get-regexp", r"^user\.(name|email)$").stdout.split()
    for key, default in _IDENTITY.items():
        if f"user.{key}" not in configured:
            for role in ("AUTHOR", "COMMITTER"):
                env.setdefault(f"GIT_{role}_{key.upper()}", default)
    return env


def _said(done: subprocess.CompletedProcess[str]) -> str:
    """What git said about a failure, without its hints on how to continue by hand."""
    lines = (done.stderr or done.stdout).splitlines()
    return "\n".join(line for line in lines if not line.startswith("hint:")).strip()


class LedgerError(RuntimeError):
    """Git refused a step of the ledger; the message says what, git's words, and what to do."""


class Ledger(Protocol):
    def locked(self) -> ContextManager[None]:
        """Hold the ledger for one action (its sync, its write, its commit)."""
        ...

    def sync(self) -> None:
        """Bring in what others merged, before an action reads the stack file."""
        ...

    def record(self, message: str) -> Optional[str]:
        """Commit (and push) the stack file: the new commit's sha, None when nothing changed."""
        ...


class NoLedger:
    """No repository: the stack file is all there is."""

    def locked(self) -> ContextManager[None]:
        return contextlib.nullcontext()

    def sync(self) -> None:
        pass

    def record(self, message: str) -> Optional[str]:
        return None


class GitLedger:
    """The stack file's repository; with a remote, its `branch` there is the ledger.

    `branch` defaults to the remote's default branch. The checkout must be on that
    branch (or detached, as CI checkouts can be): the ledger rebases onto it and
    pushes HEAD to it, which on another branch would publish that branch's work."""

    def __init__(self, repo: Path, stack_file: Path, remote: Optional[str] = "origin", branch: Optional[str] = None):
        self.repo = repo
        self.path = os.path.relpath(stack_file, repo) if stack_file.is_absolute() else str(stack_file)
        self._env = git_env(repo)
        has_remote = remote is not None and self._run("config", "--get", f"remote.{remote}.url").returncode == 0
        self.remote = remote if has_remote else None  # a repository without one keeps its ledger locally
        current = self._run("symbolic-ref", "--quiet", "--short", "HEAD").stdout.strip() or None
        self.branch = branch or (self._remote_default() if self.remote else None) or current
        if self.remote and self.branch is None:
            raise LedgerError(f"{repo}: HEAD is detached and {self.remote} names no default branch; say which branch the ledger is")
        if self.remote and current not in (None, self.branch):
            raise LedgerError(
                f"{repo}: the release ledger is {self.remote}/{self.branch}, but this checkout is on {current}; "
                f"`git switch {self.branch}` first, so the release's commits land on {self.branch} and nothing else is pushed there"
            )

    @classmethod
    def init(cls, workspace: Path, stack_file: Path, message: str) -> GitLedger:
        """A new repository in `workspace` whose first commit is `stack_file` (inside it):
        an offline rehearsal keeps its ledger like a real release, without a remote."""
        created = run_git(workspace, dict(os.environ), "init", "--quiet", "-b", "main")
        if created.returncode != 0:
            raise LedgerError(f"git init in {workspace} failed: {_said(created)}")
        ledger = cls(workspace, stack_file, remote=None)
        ledger.record(message)
        return ledger

    def locked(self) -> ContextManager[None]:
        """An exclusive lock in the repository's git directory (beside git's own locks)."""
        return exclusive_lock(Path(self.repo, self._check("rev-parse", "--git-dir").stdout.strip(), "carepath-ledger.lock"))

    def sync(self) -> None:
        if self.remote:
            self._rebase_onto_remote()

    def record(self, message: str) -> Optional[str]:
        self._check("add", "--", self.path)
        if self._run("diff", "--cached", "--quiet", "--", self.path).returncode == 0:
            return None
        self._check("commit", "--quiet", "-m", message, "--", self.path)
        if self.remote:
            self._push()
        return self._check("rev-parse", "HEAD").stdout.strip()

    def _push(self) -> None:
        target = f"HEAD:refs/heads/{self.branch}"
        for _ in range(_PUSH_ATTEMPTS):
            pushed = self._run("push", "--porcelain", str(self.remote), target)
            if pushed.returncode == 0:
                return
            if "(fetch first)" not in pushed.stdout and "(non-fast-forward)" not in pushed.stdout:
                raise LedgerError(
                    f"git push {self.remote} {target} failed: {_said(pushed)}\n"
                    f"The change to {self.path} is committed locally; push it when {self.remote} accepts it "
                    f"(through a pull request if {self.branch} is protected)."
                )
            self._rebase_onto_remote()  # someone merged meanwhile: go on top of it
        raise LedgerError(
            f"git push {self.remote} {target} was rejected {_PUSH_ATTEMPTS} times: {self.branch} keeps moving. "
            f"The change to {self.path} is committed locally; push it once {self.branch} is quiet."
        )

    def _rebase_onto_remote(self) -> None:
        upstream = f"{self.remote}/{self.branch}"
        if self._rebasing():
            raise LedgerError(f"{self.repo}: a rebase is in progress; finish it (`git rebase --continue` or `--abort`) first")
        self._check("fetch", "--quiet", str(self.remote), f"+refs/heads/{self.branch}:refs/remotes/{upstream}")
        rebased = self._run("rebase", "--autostash", upstream)
        if rebased.returncode == 0:
            return
        conflicts = self._run("diff", "--name-only", "--diff-filter=U").stdout.split()
        if self._rebasing():
            self._run("rebase", "--abort")
        raise LedgerError(
            f"git rebase {upstream} failed in {self.repo}"
            + (f": {', '.join(conflicts)} changed there too" if conflicts else "")
            + f": {_said(rebased)}\n"
            f"The checkout is as it was before the rebase; reconcile by hand (`git pull --rebase {self.remote} {self.branch}`), then rerun."
        )

    def _rebasing(self) -> bool:
        return any(
            Path(self.repo, self._run("rev-parse", "--git-path", state).stdout.strip()).exists()
            for state in ("rebase-merge", "rebase-apply")
        )

    def _remote_default(self) -> Optional[str]:
        head = self._run("symbolic-ref", "--quiet", "--short", f"refs/remotes/{self.remote}/HEAD").stdout.strip()
        return head.removeprefix(f"{self.remote}/") or None

    def _check(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self._run(*args)
        if done.returncode != 0:
            raise LedgerError(f"git {' '.join(args)} failed in {self.repo}: {_said(done)}")
        return done

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_git(self.repo, self._env, *args)
