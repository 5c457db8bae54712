"""`python -m release COMMAND STACK`: drive a release of chat-api through Pulumi.

  status STACK             the stack file and the applied state side by side, the lease, live health
  start STACK --tag TAG    the release's first step (canary: first weight; blue-green: the idle colour; rolling: the tag)
  advance STACK            canary: the next weight step (--weight W: a later one)
  promote STACK            canary: the canary becomes stable
  switch STACK             blue-green: production to the other colour
  abort STACK              back to the version the release replaces
  run STACK --tag TAG      the whole release (or the rest of the one in flight), gated on Prometheus
  deploy STACK             `pulumi up` of the stack file as it is, refused when it would move a release

STACK is any stack with a Pulumi.<STACK>.yaml in the project (the current directory when it
holds a Pulumi.yaml, else this repository). The stack is the real one (Automation API, needs
the Pulumi CLI) or, with --offline, a rehearsal on the offline plan engine whose state persists
in .carepath/offline/<stack>/ (--reset starts it over from the stack file). Each command holds
the stack's release lease while it runs and commits every change of the stack file to the
ledger. Exit codes: 0 done; 1 the release failed or stopped (rolled back, `up` failed, the
stack file moved under it); 2 bad input, or a command the stack or its state does not allow;
3 another driver holds the lease; 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Optional

from core import actions
from core.actions import Refused
from core.release import release_state
from core.settings import SettingsError
from offline.harness import ROOT, ProgramFailed, stack_names
from release.audit import AuditLog, who
from release.driver import Driver
from release.judge import Ratio
from release.lease import FileLeaseStore, GitRefLeaseStore, Lease, LeaseHeld, LeaseKeeper, LeaseLost, LeaseStore, LeaseStoreError
from release.ledger import GitLedger, LedgerError
from release.ports import MetricsError, StackError
from release.stackfile import settings_of
from release.status import report

LEASE_SECONDS = 600.0
MUTATING = ("start", "advance", "promote", "switch", "abort", "run", "deploy")


class Usage(Exception):
    """Bad input: exit 2 with this message."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("stack", help="a stack with a Pulumi.<stack>.yaml in the project")
    common.add_argument("--offline", action="store_true", help="rehearse on the offline plan engine (state in .carepath/offline/<stack>/)")
    common.add_argument("--reset", action="store_true", help="with --offline: start the rehearsal over from the stack file")
    common.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus URL (e.g. through kubectl port-forward)")
    common.add_argument("--audit-log", type=Path, help="default: .carepath/audit/<stack>.jsonl (offline: in the workspace)")
    driving = argparse.ArgumentParser(add_help=False)
    driving.add_argument("--break-lease", action="store_true", help="take over the lease of another driver (asks for the stack name; --yes does not)")
    driving.add_argument("--yes", action="store_true", help="with --break-lease: no question")
    driving.add_argument("--lease-seconds", type=float, default=LEASE_SECONDS, help="the lease expires this long after its holder's last renewal")
    summary, _, details = (__doc__ or "").partition("\n\n")
    parser = argparse.ArgumentParser(prog="python -m release", description=summary, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=details)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, mutating: bool = True) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=text, description=text, parents=[common, driving] if mutating else [common])

    command("status", "the stack file and the applied state side by side, the lease, live health", mutating=False)
    command("start", "the release's first step").add_argument("--tag", required=True, help="the candidate image tag")
    command("advance", "canary: the next weight step").add_argument("--weight", type=int, help="a later step of rollout.canary.steps")
    command("promote", "canary: the canary becomes stable")
    command("switch", "blue-green: production traffic to the other colour")
    command("abort", "back to the version the release replaces").add_argument("--reason", default="requested", help="recorded in the audit log and the ledger")
    run = command("run", "the whole release, or the rest of the one in flight, gated on Prometheus")
    run.add_argument("--tag", required=True, help="the candidate image tag")
    run.add_argument("--report", type=Path, help="write the HTML report here at the end")
    run.add_argument("--abort-on-failure", action="store_true", help="abort the release when pulumi up fails mid-release")
    run.add_argument("--test-url", help="blue-green: where smoke checks go (default: the test listener; offline stacks have none, so they are skipped)")
    run.add_argument("--scenario", help="with --offline: rehearse against a synthetic chat-api and a real Prometheus on loopback (starts over, unless it resumes its own interrupted release)")
    command("deploy", "`pulumi up` of the stack file as it is; refused when it would move a release")
    return parser


def project_dir() -> Path:
    """The project: the current directory when it holds a Pulumi.yaml (as the Pulumi CLI finds
    it), else this repository."""
    here = Path.cwd()
    return here if (here / "Pulumi.yaml").is_file() else ROOT


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # a cancelled CI job ends the run as Ctrl-C would
    try:
        return _main(args)
    except Usage as error:
        print(f"python -m release {args.command}: {error}", file=sys.stderr)
        return 2
    except LeaseStoreError as error:
        print(f"stack {args.stack}: the release lease cannot be read or written: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `status | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (no flush error at exit)
        return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _main(args: argparse.Namespace) -> int:
    project = project_dir()
    known = stack_names(project)
    if args.stack not in known:
        raise Usage(f"no stack {args.stack!r}: no Pulumi.{args.stack}.yaml in {project} (stacks: {', '.join(known) or 'none'})")
    if args.reset and not args.offline:
        raise Usage("--reset starts an offline rehearsal over: use it with --offline")
    scenario = getattr(args, "scenario", None)
    if scenario is not None:
        from rehearsal import SCENARIOS

        if not args.offline:
            raise Usage("--scenario rehearses against a synthetic service: use it with --offline")
        if scenario not in SCENARIOS:
            raise Usage(f"--scenario {scenario!r}: one of {', '.join(sorted(SCENARIOS))}")
    stack, store, ledger, audit_path = _open(args, project, scenario)
    audit = AuditLog(args.audit_log or audit_path, args.stack)
    run_id = uuid.uuid4().hex[:12]
    try:
        settings = settings_of(stack.config(), stack.name)
    except SettingsError as error:
        if args.command == "status":
            print("\n".join(report(stack.name, None, stack.applied(), _live(store), time.time())))
        print(f"stack {stack.name}: {error}", file=sys.stderr)
        return 2
    try:
        actions.supported(args.command, settings)
    except Refused as error:
        raise Usage(str(error)) from None
    if args.command == "status":
        lines = report(stack.name, release_state(settings), stack.applied(), _live(store), time.time())
        print("\n".join(lines + _health(settings, args.prometheus)))
        return 0
    try:
        with _lease(args, store, run_id) as lease, _metrics(args, stack, scenario) as metrics:
            options = {"abort_on_failure": getattr(args, "abort_on_failure", False), "test_url": getattr(args, "test_url", None)} | metrics
            driver = Driver(stack, audit=audit, lease=lease, ledger=ledger, run_id=run_id, **options)
            return _command(args, driver, audit)
    except LeaseHeld as error:
        if args.command == "deploy":
            print(f"stack {args.stack}: not deployed: {error.lease.describe(time.time())}; the release applies the stack file at its next step")
            return 0
        print(str(error), file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(
            f"\n{args.stack}: interrupted; `python -m release status {args.stack}` says where the release stands, "
            "and the next command re-applies the stack file if the cluster is behind it",
            file=sys.stderr,
        )
        return 130


def _open(args: argparse.Namespace, project: Path, scenario: Optional[str]) -> tuple[Any, LeaseStore, Any, Path]:
    """The stack, its lease store, its ledger and its default audit log."""
    try:
        if args.offline:
            from rehearsal.run import PACE
            from release.stacks import OfflineStack

            stack = OfflineStack(args.stack, project, PACE if scenario else None, reset=args.reset)
            if scenario is not None and not _resumable(stack, args.tag):
                # A rehearsal starts from the stack file, unless it resumes its own interrupted release.
                stack = OfflineStack(args.stack, project, PACE, reset=True)
            file = stack.file.path
            # The workspace is a repository of its own, so its ledger never commits to the project's.
            fresh = not (stack.workspace / ".git").exists()
            ledger = GitLedger.init(stack.workspace, file, f"offline stack {args.stack}: from Pulumi.{args.stack}.yaml") if fresh else GitLedger(stack.workspace, file, remote=None)
            return stack, FileLeaseStore(stack.workspace / "lease.json"), ledger, stack.workspace / "audit.jsonl"
        from release.stacks import AutomationStack, stack_file_path

        try:
            real = AutomationStack(args.stack, project)
        except Exception as error:  # the Automation API raises plain errors when the CLI or the stack is missing
            raise Usage(f"cannot open the Pulumi stack {args.stack!r} ({error}); rehearse with --offline") from None
        return real, GitRefLeaseStore(project, args.stack), GitLedger(project, stack_file_path(project, args.stack)), project / ".carepath" / "audit" / f"{args.stack}.jsonl"
    except ProgramFailed as failure:
        if isinstance(failure.cause, SettingsError):
            raise Usage(f"stack {args.stack}: {failure.cause}") from None
        raise
    except LedgerError as error:
        raise Usage(str(error)) from None


def _resumable(stack: Any, tag: str) -> bool:
    """The stack has a release of `tag` in flight."""
    try:
        in_flight = settings_of(stack.config(), stack.name).rollout.in_flight
    except SettingsError:
        return False
    return in_flight is not None and in_flight.tag == tag


def _live(store: LeaseStore) -> Optional[Lease]:
    lease = store.read()
    return lease if lease is not None and lease.live(time.time()) else None


@contextlib.contextmanager
def _lease(args: argparse.Namespace, store: LeaseStore, run_id: str) -> Iterator[LeaseKeeper]:
    """The release lease around a command; `--break-lease` asks first, unless `--yes`."""
    held = _live(store) if args.break_lease else None
    if held is not None and not args.yes:
        if not sys.stdin.isatty():
            raise Usage(f"--break-lease: {held.describe(time.time())}; confirm with --yes (no terminal to ask on)")
        answer = input(f"{held.describe(time.time())}\ntake the lease over? type the stack name ({args.stack}): ")
        if answer.strip() != args.stack:
            raise Usage("--break-lease: not confirmed; nothing changed")
    command = f"{args.command} {getattr(args, 'tag', '') or ''}".strip()
    with LeaseKeeper(store, args.stack, run_id, who(), command, args.lease_seconds, break_lease=held is not None) as keeper:
        yield keeper


@contextlib.contextmanager
def _metrics(args: argparse.Namespace, stack: Any, scenario: Optional[str]) -> Iterator[dict[str, Any]]:
    """The driver's metrics (and, rehearsing a scenario, its smoke checks): the operator's
    Prometheus, or a synthetic chat-api and a real Prometheus on loopback, stopped after."""
    from release.prometheus import PrometheusMetrics

    if scenario is None:
        yield {"metrics": PrometheusMetrics(args.prometheus)}
        return
    from rehearsal.run import HISTORY_STEP, rehearsal

    with rehearsal(stack, args.tag, scenario) as (url, service):
        print(f"rehearsal: scenario {scenario}, Prometheus {url}, synthetic chat-api {service.url}")
        yield {"metrics": PrometheusMetrics(url), "test_url": args.test_url or service.url, "history_step": HISTORY_STEP}


def _command(args: argparse.Namespace, driver: Driver, audit: AuditLog) -> int:
    name = args.stack
    try:
        if args.command in ("start", "advance", "promote", "switch") and driver.reconcile():
            # The stack file held a decision the cluster had not applied (a failed or interrupted
            # command): applying it is what this command finishes. Acting on top of it would make
            # two moves at once, say two weight steps, with nothing in between.
            print(f"{name}: nothing else done: the cluster now has the stack file's last decision; `{args.command}` again goes on from there")
            return 0
        if args.command == "start":
            driver.start(args.tag)
        elif args.command == "advance":
            driver.advance(args.weight)
        elif args.command == "promote":
            driver.promote()
        elif args.command == "switch":
            driver.switch()
        elif args.command == "abort":
            driver.abort(args.reason)
        elif args.command == "deploy":
            print(driver.deploy())
        else:
            run = driver.run(args.tag)
            print(f"{args.tag} on {name}: {run.outcome}" + (f" ({run.message})" if run.message else ""))
            if args.report:
                from release.report import render

                args.report.write_text(render(run, audit.entries(), driver.signals()))
                print(f"report: {args.report}")
            return 0 if run.outcome in ("promoted", "switched") else 1
    except Refused as error:
        raise Usage(str(error)) from None
    except (StackError, LedgerError, LeaseLost) as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    return 0


def _health(settings: Any, prometheus: str) -> list[str]:
    """Live request rate and ratio signals per track over the last 5 minutes."""
    from core.release import plan_release
    from core.signals import catalogue
    from release.prometheus import PrometheusMetrics

    plan = plan_release(settings)
    ratios = [s for s in catalogue(overrides=settings.rollout.analysis.signals) if s.kind == "ratio"]
    tracks = {t.track: t.track for t in plan.tracks}
    try:
        readings = PrometheusMetrics(prometheus, timeout=5).read(plan.namespaces, ratios, "track", tracks, 300, 300)
    except MetricsError as error:
        return [f"  live health unavailable: {error}"]
    lines = []
    for track in tracks:
        shares = [f"{s.name} {r.bad / r.total:.2%}" for s in ratios if isinstance(r := readings.get(s.name, {}).get(track), Ratio) and r.total > 0]
        requests = readings.get("errors", {}).get(track)
        rate = f"{requests.total / 300:.1f} req/s" if isinstance(requests, Ratio) else "no data"
        lines.append(f"  live {track:<8} {rate}  " + ", ".join(shares) + " (last 5 m)")
    return lines


if __name__ == "__main__":
    sys.exit(main())
