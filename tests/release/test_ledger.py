"""The stack file's ledger on real git: a bare `origin`, the driver's clone and a
developer's clone pushing meanwhile."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from release.ledger import GitLedger, LedgerError, NoLedger
from tests.release.conftest import git

STACK = "Pulumi.demo.yaml"
CONFIG = "config:\n  carepath:services:\n    chat-api:\n      rollout:\n        strategy: canary\n        canary:\n          weight: 0\n"


pytestmark = pytest.mark.usefixtures("hermetic_git")


def _clone(tmp_path: Path, name: str, user: str | None = None) -> Path:
    git(tmp_path, "clone", "--quiet", "origin.git", name)
    if user:
        git(tmp_path / name, "config", "user.name", user)
        git(tmp_path / name, "config", "user.email", f"{user}@example.org")
    return tmp_path / name


def _commit(clone: Path, path: str, text: str, message: str) -> str:
    (clone / path).write_text(text)
    git(clone, "add", path)
    git(clone, "commit", "--quiet", "-m", message)
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    return git(clone, "rev-parse", "HEAD")


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", "origin.git")
    seed = _clone(tmp_path, "seed", user="seed")
    (seed / "README.md").write_text("CarePath\n")
    _commit(seed, STACK, CONFIG, "demo stack")
    return tmp_path / "origin.git"


@pytest.fixture
def driver(origin: Path) -> Path:
    return _clone(origin.parent, "driver")  # no identity configured, like a fresh CI runner


@pytest.fixture
def developer(origin: Path) -> Path:
    return _clone(origin.parent, "developer", user="dev")


def _advance(clone: Path, weight: int) -> None:
    path = clone / STACK
    path.write_text(path.read_text().replace("weight: 0", f"weight: {weight}"))


def test_record_commits_the_stack_file_and_pushes_it_with_the_message(origin: Path, driver: Path) -> None:
    (driver / "notes.txt").write_text("not the ledger's\n")
    _advance(driver, 5)
    sha = GitLedger(driver, driver / STACK).record("demo: advance to 5 %\n\n5xx evidence -1.2 of [-2.9, 4.6]")
    assert sha == git(origin, "rev-parse", "main")
    assert git(origin, "log", "-1", "--format=%B", "main") == "demo: advance to 5 %\n\n5xx evidence -1.2 of [-2.9, 4.6]"
    assert git(origin, "show", "--name-only", "--format=", "main") == STACK
    assert git(origin, "log", "-1", "--format=%an <%ae>", "main") == "carepath-release <carepath-release@localhost>"
    assert "weight: 5" in git(origin, "show", f"main:{STACK}")
    assert git(driver, "status", "--porcelain") == "?? notes.txt"


def test_record_uses_the_configured_identity(origin: Path, developer: Path) -> None:
    _advance(developer, 5)
    GitLedger(developer, developer / STACK).record("demo: advance to 5 %")
    assert git(origin, "log", "-1", "--format=%an", "main") == "dev"


def test_record_with_nothing_changed_returns_none(origin: Path, driver: Path) -> None:
    before = git(origin, "rev-parse", "main")
    assert GitLedger(driver, driver / STACK).record("demo: nothing") is None
    assert git(origin, "rev-parse", "main") == before


def test_record_goes_on_top_of_what_was_merged_meanwhile(origin: Path, driver: Path, developer: Path) -> None:
    ledger = GitLedger(driver, driver / STACK)
    merged = _commit(developer, "README.md", "CarePath, merged meanwhile\n", "docs")
    _advance(driver, 5)
    sha = ledger.record("demo: advance to 5 %")
    assert sha == git(origin, "rev-parse", "main")
    assert git(origin, "rev-parse", "main^") == merged
    assert git(origin, "show", "main:README.md") == "CarePath, merged meanwhile"
    assert "weight: 5" in git(origin, "show", f"main:{STACK}")


def test_a_conflicting_change_raises_and_leaves_the_checkout_clean(origin: Path, driver: Path, developer: Path) -> None:
    ledger = GitLedger(driver, driver / STACK)
    theirs = _commit(developer, STACK, CONFIG.replace("weight: 0", "weight: 50"), "hand edit")
    _advance(driver, 5)
    with pytest.raises(LedgerError) as failed:
        ledger.record("demo: advance to 5 %")
    assert STACK in str(failed.value) and "git pull --rebase" in str(failed.value)
    assert git(origin, "rev-parse", "main") == theirs
    assert git(driver, "status", "--porcelain") == ""
    assert not Path(driver, git(driver, "rev-parse", "--git-path", "rebase-merge")).exists()
    assert git(driver, "log", "-1", "--format=%s") == "demo: advance to 5 %"  # kept, for the operator to reconcile


def test_a_push_the_remote_refuses_raises_saying_the_change_is_committed_locally(origin: Path, driver: Path) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    _advance(driver, 5)
    with pytest.raises(LedgerError, match="main is protected") as refused:
        GitLedger(driver, driver / STACK).record("demo: advance to 5 %")
    assert "committed locally" in str(refused.value)


def test_sync_brings_in_what_was_merged_and_keeps_an_uncommitted_stack_file(origin: Path, driver: Path, developer: Path) -> None:
    ledger = GitLedger(driver, driver / STACK)
    merged = _commit(developer, "README.md", "CarePath, merged meanwhile\n", "docs")
    _advance(driver, 5)
    ledger.sync()
    assert git(driver, "rev-parse", "HEAD") == merged
    assert (driver / "README.md").read_text() == "CarePath, merged meanwhile\n"
    assert "weight: 5" in (driver / STACK).read_text()


def test_the_ledger_is_the_remotes_default_branch_and_refuses_another_checkout(origin: Path, driver: Path) -> None:
    assert GitLedger(driver, driver / STACK).branch == "main"
    git(driver, "switch", "--quiet", "-c", "feature")
    with pytest.raises(LedgerError, match="git switch main"):
        GitLedger(driver, driver / STACK)


def test_init_makes_a_local_ledger_whose_first_commit_is_the_stack_file(tmp_path: Path) -> None:
    workspace = tmp_path / "rehearsal"
    workspace.mkdir()
    (workspace / STACK).write_text(CONFIG)
    ledger = GitLedger.init(workspace, workspace / STACK, "demo: rehearsal of v2.0.0")
    assert (ledger.remote, ledger.branch) == (None, "main")
    assert git(workspace, "log", "--format=%s") == "demo: rehearsal of v2.0.0"
    assert git(workspace, "show", "--name-only", "--format=", "HEAD") == STACK
    _advance(workspace, 5)
    sha = ledger.record("demo: advance to 5 %")
    assert sha == git(workspace, "rev-parse", "HEAD") and git(workspace, "rev-list", "--count", "HEAD") == "2"


def test_a_repository_without_the_remote_keeps_its_ledger_locally(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet", "-b", "trunk", "local")
    local = tmp_path / "local"
    (local / STACK).write_text(CONFIG)
    ledger = GitLedger(local, local / STACK)
    assert (ledger.remote, ledger.branch) == (None, "trunk")
    assert ledger.record("demo stack") == git(local, "rev-parse", "HEAD")


def test_drivers_in_one_checkout_hold_the_ledger_in_turn_and_leave_no_file_behind(driver: Path) -> None:
    entered = threading.Event()

    def other_driver() -> None:
        with GitLedger(driver, driver / STACK).locked():
            entered.set()

    with GitLedger(driver, driver / STACK).locked():
        waiting = threading.Thread(target=other_driver)
        waiting.start()
        assert not entered.wait(0.3), "the other driver waits while this one holds the ledger"
    waiting.join(10)
    assert entered.is_set()
    assert git(driver, "status", "--porcelain") == "", "the lock lives in git's own directory"


def test_no_ledger_records_nothing() -> None:
    ledger = NoLedger()
    with ledger.locked():
        ledger.sync()
    assert ledger.record("demo: advance to 5 %") is None
