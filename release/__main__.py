"""`python -m release COMMAND STACK [--service S]`: drive a release of one service through Pulumi.

  status STACK             each service's stack file and applied state side by side, its lease, live health
  start STACK --tag TAG    the release's first step (canary: first weight; blue-green: the idle colour; rolling: the tag)
  advance STACK            canary: the next weight step (--weight W: a later one)
  promote STACK            canary: the canary becomes stable
  switch STACK             blue-green: production to the other colour
  abort STACK              back to the version the release replaces
  run STACK --tag TAG      the whole release (or the rest of the one in flight), gated on Prometheus
  deploy STACK             `pulumi up` of the stack file as it is, refused when it would move any service's release
  promote-through --tag T  one tag through the service's promotion path (demo -> staging -> production)
  approve STACK --tag T    let the tag into a stage that requires an approval (--reason recorded)
  history                  the promotion records of the service's tags, stage by stage
  path                     the stages of the service's promotion path

STACK is any stack with a Pulumi.<STACK>.yaml in the project (the current directory when it
holds a Pulumi.yaml, else this repository). --service names the service of the stack
(`services.<name>` in its config) a command releases: chat-api unless given; `status`
without it shows every service. The stack is the real one (Automation API, needs the Pulumi
CLI) or, with --offline, a rehearsal on the offline plan engine whose state persists in
.carepath/offline/<stack>/ (--reset starts it over from the stack file). Each command holds
the release lease of its stack and service while it runs (`deploy`: of every service), so
two services can be released at once, and commits every change of the stack file to the
ledger. Exit codes: 0 done; 1 the release failed or stopped (rolled back, `up` failed, the
stack file moved under it); 2 bad input (an unknown stack or service, a stack file the strict
reader refuses: one line, file:line:column, ...), or a command the
service or its state does not allow; 3 another driver holds the lease; 4 (promote-through) a
stage's gate is still closed (a freeze, a soak, an approval): rerun later; 130 interrupted.

`start` and `run` (of a release not yet in flight) first vet the candidate image, before
they take the lease or change anything: the tag must be in the service's ECR repository (in
the stack's `aws:region`) and its scan finished with no finding at or above
`services.<name>.imageScan.blockAt` (CRITICAL unless set); a refusal lists the findings and
exits 2. The driver vets it again right before its first write, and the audit log records
the digest it started on. Offline, the rehearsal's registry has every tag, clean, except tags ending in
`-critical`, `-scanning` or `-unpushed` (`rehearsal.images`).
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
from typing import Any, Callable, Iterator, Optional

from core import actions
from core.actions import Refused
from core.release import DEFAULT_SERVICE, plan_release, release_state
from core.settings import Settings, SettingsError, UnknownService
from offline.harness import ROOT, ProgramFailed, stack_names
from offline.stack_yaml import StackFileError, stack_config
from release.audit import AuditLog, who
from release.driver import Driver, vet_image
from release.judge import Ratio
from release.lease import FileLeaseStore, GitRefLeaseStore, Lease, LeaseHeld, LeaseKeeper, LeaseLost, LeaseStore, LeaseStoreError
from release.ledger import GitLedger, LedgerError
from release.ports import Images, MetricsError, StackError
from release.promotion_cli import COMMANDS as PROMOTION_COMMANDS
from release.promotion_cli import Usage, add_commands
from release.stackfile import settings_of
from release.status import report

LEASE_SECONDS = 600.0
LeaseStores = Callable[[str], LeaseStore]  # a service's lease store


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("stack", help="a stack with a Pulumi.<stack>.yaml in the project")
    common.add_argument("--offline", action="store_true", help="rehearse on the offline plan engine (state in .carepath/offline/<stack>/)")
    common.add_argument("--reset", action="store_true", help="with --offline: start the rehearsal over from the stack file")
    common.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus URL (e.g. through kubectl port-forward)")
    common.add_argument("--audit-log", type=Path, help="default: .carepath/audit/<stack>.jsonl (offline: in the workspace)")
    one_service = argparse.ArgumentParser(add_help=False)
    one_service.add_argument("--service", default=DEFAULT_SERVICE, help=f"the service of the stack to release (default: {DEFAULT_SERVICE})")
    driving = argparse.ArgumentParser(add_help=False)
    driving.add_argument("--break-lease", action="store_true", help="take over the lease of another driver (asks for the stack name; --yes does not)")
    driving.add_argument("--yes", action="store_true", help="with --break-lease: no question")
    driving.add_argument("--lease-seconds", type=float, default=LEASE_SECONDS, help="the lease expires this long after its holder's last renewal")
    summary, _, details = (__doc__ or "").partition("\n\n")
    parser = argparse.ArgumentParser(prog="python -m release", description=summary, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=details)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, parents: tuple[argparse.ArgumentParser, ...] = (one_service, driving)) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=text, description=text, parents=[common, *parents])

    status = command("status", "each service's stack file and applied state side by side, its lease, live health", parents=())
    status.add_argument("--service", help="only this service (default: every service of the stack)")
    command("start", "the release's first step").add_argument("--tag", required=True, help="the candidate image tag")
    command("advance", "canary: the next weight step").add_argument("--weight", type=int, help="a later step of the service's rollout.canary.steps")
    command("promote", "canary: the canary becomes stable")
    command("switch", "blue-green: production traffic to the other colour")
    command("abort", "back to the version the release replaces").add_argument("--reason", default="requested", help="recorded in the audit log and the ledger")
    run = command("run", "the whole release, or the rest of the one in flight, gated on Prometheus")
    run.add_argument("--tag", required=True, help="the candidate image tag")
    run.add_argument("--report", type=Path, help="write the HTML report here at the end")
    run.add_argument("--abort-on-failure", action="store_true", help="abort the release when pulumi up fails mid-release")
    run.add_argument("--test-url", help="blue-green: where smoke checks go (default: the service's rule on the test listener; offline stacks have none, so they are skipped)")
    run.add_argument(
        "--scenario",
        help="with --offline: rehearse against a synthetic version of the service and a real Prometheus on loopback (starts over, unless it resumes its own interrupted release)",
    )
    command("deploy", "`pulumi up` of the stack file as it is; refused when it would move any service's release", parents=(driving,))
    add_commands(commands, common, one_service)
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
        print(f"{getattr(args, 'stack', args.service)}: the release lease cannot be read or written: {error}", file=sys.stderr)
        return 1
    except StackFileError as error:  # one line: file:line:column: what is wrong and what to write
        print(error, file=sys.stderr)
        return 2
    except BrokenPipeError:  # `status | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (no flush error at exit)
        return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _main(args: argparse.Namespace) -> int:
    project = project_dir()
    if args.command in PROMOTION_COMMANDS:
        return _promotion(args, project)
    known = stack_names(project)
    if args.stack not in known:
        raise Usage(f"no stack {args.stack!r}: no Pulumi.{args.stack}.yaml in {project} (stacks: {', '.join(known) or 'none'})")
    if args.reset and not args.offline:
        raise Usage("--reset starts an offline rehearsal over: use it with --offline")
    # Read strictly before anything else, so a refusal names the project's file, which the real
    # stack reads and an offline rehearsal copies, rather than a copy of it.
    stack_config(project / f"Pulumi.{args.stack}.yaml")
    if args.command == "approve":
        from release.promotion_cli import approve

        return approve(args, project)
    scenario = getattr(args, "scenario", None)
    if scenario is not None:
        from rehearsal import SCENARIOS

        if not args.offline:
            raise Usage("--scenario rehearses against a synthetic service: use it with --offline")
        if scenario not in SCENARIOS:
            raise Usage(f"--scenario {scenario!r}: one of {', '.join(sorted(SCENARIOS))}")
    stack, stores, ledger, audit_path = _open(args, project, scenario)
    audit = AuditLog(args.audit_log or audit_path, args.stack)
    run_id = uuid.uuid4().hex[:12]
    try:
        settings = settings_of(stack.config(), stack.name)
    except SettingsError as error:
        if args.command == "status":
            applied = stack.applied()
            services = [args.service] if args.service else sorted(applied) or [DEFAULT_SERVICE]
            print("\n".join(_status(stack.name, {service: (None, applied.get(service), _live(stores(service))) for service in services})))
        print(f"stack {stack.name}: {error}", file=sys.stderr)
        return 2
    for warning in settings.warnings:  # keys with no effect: said, never a refusal
        print(f"warning: {warning}", file=sys.stderr)
    try:
        if args.command == "status":
            return _show_status(args, stack, stores, settings)
        if args.command != "deploy":
            actions.supported(args.command, settings, args.service)
    except (Refused, UnknownService) as error:
        raise Usage(str(error)) from None
    service = DEFAULT_SERVICE if args.command == "deploy" else args.service
    images = _images(args, project)
    if args.command in ("start", "run") and not _resumable(stack, service, args.tag):
        try:
            vet_image(images, settings, service, args.tag)  # before the lease: a refused release takes nothing
        except Refused as error:
            raise Usage(str(error)) from None
    try:
        leased = list(settings.services) if args.command == "deploy" else [service]
        with _leases(args, stores, leased, run_id) as lease, _metrics(args, stack, service, scenario) as metrics:
            options = {"abort_on_failure": getattr(args, "abort_on_failure", False), "test_url": getattr(args, "test_url", None)} | metrics
            driver = Driver(stack, audit=audit, images=images, service=service, lease=lease, ledger=ledger, run_id=run_id, **options)
            return _command(args, driver, audit)
    except LeaseHeld as error:
        if args.command == "deploy":
            print(f"stack {args.stack}: not deployed: the release of {error.lease.service} is {error.lease.describe(time.time())}; the release applies the stack file at its next step")
            return 0
        print(str(error), file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(
            f"\n{args.stack}: interrupted; `python -m release status {args.stack}` says where each release stands, "
            "and the next command re-applies the stack file if the cluster is behind it",
            file=sys.stderr,
        )
        return 130


def _promotion(args: argparse.Namespace, project: Path) -> int:
    """`promote-through`, `history`, `path`: the service's path, over its stacks."""
    from release import promotion_cli

    if args.command == "path":
        return promotion_cli.show_path(args, project)
    if args.command == "history":
        return promotion_cli.history(args, project)
    try:
        return promotion_cli.promote_through(args, project, lambda stack: _images(argparse.Namespace(offline=args.offline, stack=stack), project))
    except Refused as error:
        raise Usage(str(error)) from None
    except LeaseHeld as error:
        print(str(error), file=sys.stderr)
        return 3
    except (StackError, LedgerError, LeaseLost) as error:
        print(f"promote-through {args.service} {args.tag}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\npromote-through {args.service} {args.tag}: interrupted; run it again to resume (`python -m release history --service {args.service}` says where it stands)", file=sys.stderr)
        return 130


def _open(args: argparse.Namespace, project: Path, scenario: Optional[str]) -> tuple[Any, LeaseStores, Any, Path]:
    """The stack, its lease stores (one per service), its ledger and its default audit log."""
    try:
        if args.offline:
            from rehearsal.run import pace
            from release.stacks import OfflineStack

            overrides = pace(args.service) if scenario else None
            stack = OfflineStack(args.stack, project, overrides, reset=args.reset)
            if scenario is not None and not _resumable(stack, args.service, args.tag):
                # A rehearsal starts from the stack file, unless it resumes its own interrupted release.
                stack = OfflineStack(args.stack, project, overrides, reset=True)
            workspace = stack.workspace
            return stack, lambda service: FileLeaseStore(workspace / "leases" / f"{service}.json"), stack.ledger(), workspace / "audit.jsonl"
        from release.stacks import AutomationStack, stack_file_path

        try:
            real = AutomationStack(args.stack, project)
        except Exception as error:  # the Automation API raises plain errors when the CLI or the stack is missing
            raise Usage(f"cannot open the Pulumi stack {args.stack!r} ({error}); rehearse with --offline") from None
        ledger = GitLedger(project, stack_file_path(project, args.stack))
        return real, lambda service: GitRefLeaseStore(project, args.stack, service), ledger, project / ".carepath" / "audit" / f"{args.stack}.jsonl"
    except ProgramFailed as failure:
        if isinstance(failure.cause, SettingsError):
            raise Usage(f"stack {args.stack}: {failure.cause}") from None
        raise
    except LedgerError as error:
        raise Usage(str(error)) from None


def _images(args: argparse.Namespace, project: Path) -> Images:
    """The registry the candidate is vetted in: ECR in the stack's region, or the rehearsal's."""
    if args.offline:
        from rehearsal.images import RehearsalImages

        return RehearsalImages()
    from release.ecr import EcrImages, region_of
    from release.stacks import stack_file_path

    return EcrImages.in_region(region_of(stack_file_path(project, args.stack)))


def _resumable(stack: Any, service: str, tag: str) -> bool:
    """The stack has a release of `tag` of the service in flight."""
    try:
        in_flight = settings_of(stack.config(), stack.name).service(service).rollout.in_flight
    except (SettingsError, UnknownService):
        return False
    return in_flight is not None and in_flight.tag == tag


def _live(store: LeaseStore) -> Optional[Lease]:
    lease = store.read()
    return lease if lease is not None and lease.live(time.time()) else None


def _show_status(args: argparse.Namespace, stack: Any, stores: LeaseStores, settings: Settings) -> int:
    services = [args.service] if args.service else list(settings.services)
    applied = stack.applied()
    wanted = {service: release_state(settings, service) for service in services}  # UnknownService: exit 2, the services listed
    health = {service: _health(settings, service, args.prometheus) for service in services}
    print("\n".join(_status(stack.name, {service: (wanted[service], applied.get(service), _live(stores(service))) for service in services}, health)))
    return 0


def _status(stack: str, states: dict[str, tuple[Any, Any, Optional[Lease]]], health: Optional[dict[str, list[str]]] = None) -> list[str]:
    """`status`'s lines: one service's report; several services' headlines first (the lines
    that matter), then each one's details under its name."""
    now = time.time()
    reports = {service: report(stack, service, wanted, applied, lease, now) + (health or {}).get(service, []) for service, (wanted, applied, lease) in states.items()}
    if len(reports) == 1:
        return next(iter(reports.values()))
    return [lines[0] for lines in reports.values()] + [line for service, lines in reports.items() for line in (f"service {service}:", *lines[1:])]


@contextlib.contextmanager
def _leases(args: argparse.Namespace, stores: LeaseStores, services: list[str], run_id: str) -> Iterator[Any]:
    """The release leases of `services` around a command (in name order, so two commands that
    want several never hold one each); `--break-lease` asks first, unless `--yes`."""
    command = f"{args.command} {getattr(args, 'tag', '') or ''}".strip()
    with contextlib.ExitStack() as held:
        keepers = []
        for service in services:
            store = stores(service)
            broken = _confirm_break(args, _live(store)) if args.break_lease else None
            keepers.append(held.enter_context(LeaseKeeper(store, args.stack, service, run_id, who(), command, args.lease_seconds, break_lease=broken is not None)))
        yield keepers[0] if len(keepers) == 1 else _AllOf(keepers)


def _confirm_break(args: argparse.Namespace, held: Optional[Lease]) -> Optional[Lease]:
    """The live lease `--break-lease` takes over, once confirmed (None: none is held)."""
    if held is None or args.yes:
        return held
    if not sys.stdin.isatty():
        raise Usage(f"--break-lease: {held.describe(time.time())}; confirm with --yes (no terminal to ask on)")
    answer = input(f"{held.describe(time.time())}\ntake the lease over? type the stack name ({args.stack}): ")
    if answer.strip() != args.stack:
        raise Usage("--break-lease: not confirmed; nothing changed")
    return held


class _AllOf:
    """Several leases checked as one, for the stack's own command (deploy)."""

    def __init__(self, keepers: list[LeaseKeeper]):
        self.keepers = keepers

    def check(self) -> None:
        for keeper in self.keepers:
            keeper.check()


@contextlib.contextmanager
def _metrics(args: argparse.Namespace, stack: Any, service: str, scenario: Optional[str]) -> Iterator[dict[str, Any]]:
    """The driver's metrics of the service (and, rehearsing a scenario, its smoke checks): the
    operator's Prometheus, or a synthetic version of the service and a real Prometheus on
    loopback, stopped after."""
    from release.prometheus import PrometheusMetrics

    if scenario is None:
        yield {"metrics": PrometheusMetrics(args.prometheus, service=service)}
        return
    from rehearsal.run import HISTORY_STEP, rehearsal

    with rehearsal(stack, args.tag, scenario, service=service) as (url, synthetic):
        print(f"rehearsal: scenario {scenario}, Prometheus {url}, synthetic {service} {synthetic.url}")
        yield {"metrics": PrometheusMetrics(url, service=service), "test_url": args.test_url or synthetic.url, "history_step": HISTORY_STEP}


def _command(args: argparse.Namespace, driver: Driver, audit: AuditLog) -> int:
    try:
        if args.command in ("start", "advance", "promote", "switch") and driver.reconcile():
            # The stack file held a decision the cluster had not applied (a failed or interrupted
            # command): applying it is what this command finishes. Acting on top of it would make
            # two moves at once, say two weight steps, with nothing in between.
            print(f"{driver.where}: nothing else done: the cluster now has the stack file's last decision; `{args.command}` again goes on from there")
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
            print(f"{args.tag} on {driver.where}: {run.outcome}" + (f" ({run.message})" if run.message else ""))
            if args.report:
                from release.report import render

                args.report.write_text(render(run, audit.entries(), driver.signals()))
                print(f"report: {args.report}")
            return 0 if run.outcome in ("promoted", "switched") else 1
    except Refused as error:
        raise Usage(str(error)) from None
    except (StackError, LedgerError, LeaseLost) as error:
        print(f"{args.stack if args.command == 'deploy' else driver.where}: {error}", file=sys.stderr)
        return 1
    return 0


def _health(settings: Settings, service: str, prometheus: str) -> list[str]:
    """The service's live request rate and ratio signals per track over the last 5 minutes."""
    from core.signals import catalogue
    from release.prometheus import PrometheusMetrics

    plan = plan_release(settings, service)
    ratios = [s for s in catalogue(service, settings.service(service).rollout.analysis.signals) if s.kind == "ratio"]
    tracks = {t.track: t.track for t in plan.tracks}
    try:
        readings = PrometheusMetrics(prometheus, timeout=5, service=service).read(plan.namespaces, ratios, "track", tracks, 300, 300)
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
