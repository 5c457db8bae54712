"""The promotion commands of `python -m release`: `promote-through`, `approve`, `history`, `path`.

They read the service's promotion path from the project's stack files (every
`Pulumi.<stack>.yaml` with `services.<service>.promotion`) and open each stage as the other
commands open one stack: the real stack (Automation API, its stack file's git ledger, its lease
ref on `origin`, its evidence beside the stack file) or, with `--offline`, the rehearsal's stack
in `.carepath/offline/<stack>/` (its workspace holds its ledger, lease and evidence).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

from core.promotion import PathError, PromotionPath, promotion_path
from core.release import DEFAULT_SERVICE
from core.settings import Settings, SettingsError
from core.stage_entry import OVERRIDABLE
from offline.harness import stack_names
from release.audit import AuditLog, who
from release.driver import Driver
from release.evidence import EvidenceStore
from release.lease import FileLeaseStore, GitRefLeaseStore, LeaseKeeper, LeaseStore
from release.promotion import Options, Outcome, Promotion, Reports, StageHandle
from release.record import ReleaseRun
from release.stackfile import StackFile, settings_of

COMMANDS = ("promote-through", "history", "path")  # no stack argument: the path is the service's
REHEARSAL_WINDOW = 10  # a rehearsal's longest soak and watch, in seconds


class Usage(Exception):
    """Bad input: exit 2 with this message."""


def add_commands(commands: Any, common: argparse.ArgumentParser, one_service: argparse.ArgumentParser) -> None:
    """The promotion commands' parsers, beside the others' (`release.__main__`)."""
    service = argparse.ArgumentParser(add_help=False)
    service.add_argument("--service", default=DEFAULT_SERVICE, help=f"the service whose path it is (default: {DEFAULT_SERVICE})")
    service.add_argument("--offline", action="store_true", help="the rehearsal's stacks in .carepath/offline/<stack>/")

    text = "one tag through the service's promotion path, stage by stage, each with its own strategy and judge"
    through = commands.add_parser("promote-through", help=text, description=text, parents=[service])
    through.add_argument("--tag", required=True, help="the image tag to promote")
    through.add_argument("--scenario", help="with --offline: each stage against a synthetic version of the service and a real Prometheus on loopback")
    through.add_argument("--reset", action="store_true", help="with --offline: start every stage's rehearsal over from its stack file (its evidence too)")
    through.add_argument("--prometheus", default="http://127.0.0.1:9090", help="every stage's Prometheus, unless --prometheus-of names its own")
    through.add_argument("--prometheus-of", action="append", default=[], metavar="STACK=URL", help="one stage's Prometheus (repeat per stage)")
    through.add_argument("--override", action="append", default=[], choices=OVERRIDABLE, help="lift a gate (a hotfix); needs --reason; recorded")
    through.add_argument("--reason", help="why the overrides are taken (recorded in the evidence)")
    through.add_argument("--max-wait", type=float, default=900.0, help="longest wait for a gate (a freeze, a soak, an approval) before stopping with exit 4; default 900 s")
    through.add_argument("--retry", action="store_true", help="try a stage again where the tag's last attempt failed")
    through.add_argument("--from", dest="first", metavar="STAGE", help="start at this stage (a hotfix: with --override previous-stage)")
    through.add_argument("--to", dest="last", metavar="STAGE", help="stop after this stage")
    through.add_argument("--report-dir", type=Path, default=Path("."), help="where the stages' reports and the path's page go")
    through.add_argument("--lease-seconds", type=float, default=600.0, help="each stage's lease expires this long after its holder's last renewal")

    text = "the promotion records of the service's tags, stage by stage"
    history = commands.add_parser("history", help=text, description=text, parents=[service])
    history.add_argument("--tag", help="only this tag")

    text = "the stages of the service's promotion path, one a line"
    commands.add_parser("path", help=text, description=text, parents=[service])

    text = "approve a tag's entry into a stage that requires an approval"
    approve = commands.add_parser("approve", help=text, description=text, parents=[common, one_service])
    approve.add_argument("--tag", required=True, help="the tag to let in")
    approve.add_argument("--reason", required=True, help="recorded with the approval")


# --- reading the path ----------------------------------------------------------------


def load_path(project: Path, service: str) -> PromotionPath:
    """The service's path over the project's stack files; every problem at once (exit 2). A stack
    file with a promotion for the service must validate; any other one is given to the path's
    rule when it does (its messages list the stacks), and does not block the path when not."""
    stacks: dict[str, Settings] = {}
    problems: list[str] = []
    for name in stack_names(project):
        config = StackFile(project / f"Pulumi.{name}.yaml").config()
        entry = config.get("services", {}).get(service)
        try:
            stacks[name] = settings_of(config, name)
        except SettingsError as error:
            if isinstance(entry, Mapping) and "promotion" in entry:
                problems += [f"Pulumi.{name}.yaml: {problem}" for problem in error.problems]
    if problems:
        raise Usage("invalid stack config:\n" + "\n".join(f"  - {p}" for p in problems))
    try:
        return promotion_path(service, stacks)
    except PathError as error:
        raise Usage(str(error)) from None


def _workspace(project: Path, stack: str) -> Path:
    return project / ".carepath" / "offline" / stack


def _evidence(project: Path, stack: str, service: str, offline: bool) -> EvidenceStore:
    if offline:
        from release.stacks import OfflineStack

        OfflineStack(stack, project)  # its workspace and its ledger, as the stack file has it
        return EvidenceStore(_workspace(project, stack), stack, service, remote=None)
    return EvidenceStore(project, stack, service)


# --- the commands --------------------------------------------------------------------


def show_path(args: argparse.Namespace, project: Path) -> int:
    print("\n".join(load_path(project, args.service).names))
    return 0


def history(args: argparse.Namespace, project: Path) -> int:
    from release.evidence import history_lines

    path = load_path(project, args.service)
    events = {}
    for stack in path.names:
        if args.offline and not (_workspace(project, stack) / ".git").exists():
            events[stack] = []
            continue
        found = _evidence(project, stack, args.service, args.offline).events(args.tag)
        events[stack] = found
    print("\n".join(history_lines(args.service, path.names, events)))
    return 0


def approve(args: argparse.Namespace, project: Path) -> int:
    path = load_path(project, args.service)
    if args.stack not in path.names:
        raise Usage(f"{args.stack} is no stage of {args.service}'s promotion path ({' -> '.join(path.names)})")
    approval = path.stage(args.stack).promotion.approval
    where = f"{args.stack}/{args.service}"
    if not approval.required:
        raise Usage(f"{where}: entering needs no approval (carepath:services.{args.service}.promotion.approval.required is false)")
    operator = who()
    if approval.approvers and operator not in approval.approvers:
        raise Usage(f"{where}: {operator} may not approve (approvers: {', '.join(approval.approvers)})")
    store = _evidence(project, args.stack, args.service, args.offline)
    requesters = {e.get("operator") for e in store.events(args.tag) if e.get("event") == "requested"}
    if operator in requesters:
        raise Usage(f"{where}: {operator} is promoting {args.tag}: an approval is someone else's (four eyes)")
    store.append("approved", args.tag, uuid.uuid4().hex[:12], by=operator, reason=args.reason)
    print(f"{where}: {args.tag} approved by {operator} ({args.reason}); recorded in {store.path.relative_to(store.path.parents[2])}")
    return 0


def promote_through(args: argparse.Namespace, project: Path, images: Callable[[str], Any]) -> int:
    path = load_path(project, args.service)
    for option, stage in (("--from", args.first), ("--to", args.last)):
        if stage is not None and stage not in path.names:
            raise Usage(f"{option} {stage}: no stage of {args.service}'s path ({' -> '.join(path.names)})")
    if args.first and args.last and path.names.index(args.first) > path.names.index(args.last):
        raise Usage(f"--from {args.first} comes after --to {args.last} on the path ({' -> '.join(path.names)})")
    if args.override and not (args.reason or "").strip():
        raise Usage("--override needs --reason: an override is recorded with why it was taken")
    if args.offline and args.scenario is None:
        raise Usage("--offline promotes on the rehearsal's stacks: name a --scenario (the synthetic service each stage judges)")
    if args.scenario is not None and not args.offline:
        raise Usage("--scenario rehearses against a synthetic service: use it with --offline")
    if args.reset and not args.offline:
        raise Usage("--reset starts an offline rehearsal over: use it with --offline")
    if args.offline:
        path = rehearsal_pace(path)
    prometheus_of = dict(_stack_url(item, path) for item in args.prometheus_of)
    run_id, operator = uuid.uuid4().hex[:12], who()
    names = path.names[path.names.index(args.first) if args.first else 0 : path.names.index(args.last) + 1 if args.last else len(path.names)]
    stacks = {name: _stack(args, project, name, path) for name in names}
    options = Options(
        overrides={gate: args.reason for gate in args.override}, max_wait=args.max_wait, poll_seconds=1.0 if args.offline else 10.0,
        retry=args.retry, first=args.first, last=args.last, report_dir=args.report_dir, project=project,
    )
    with _rehearsals(args, list(stacks.values())) as rehearsed:

        @contextlib.contextmanager
        def open_stage(name: str) -> Iterator[StageHandle]:
            stack = stacks[name]
            with LeaseKeeper(_lease_store(args, project, name), name, args.service, run_id, operator, f"promote-through {args.tag}", args.lease_seconds) as lease:
                yield _handle(args, project, stack, lease, run_id, images(name), rehearsed.get(name), prometheus_of.get(name) or args.prometheus)

        evidence: dict[str, EvidenceStore] = {}

        def evidence_of(name: str) -> EvidenceStore:  # any stage's, the one before `--from` too
            if name not in evidence:
                evidence[name] = _evidence(project, name, args.service, args.offline)
            return evidence[name]

        promotion = Promotion(
            path, args.tag, run_id, operator, evidence_of, open_stage, options,
            reports=_reports(args, project, path, evidence, stacks),
        )
        print(f"promote-through {args.service} {args.tag}: {' -> '.join(names)} (run {run_id})")
        outcome: Outcome = promotion.run()
    print(outcome.message)
    return outcome.code


def _stack_url(item: str, path: PromotionPath) -> tuple[str, str]:
    stack, sep, url = item.partition("=")
    if not sep or stack not in path.names or not url:
        raise Usage(f"--prometheus-of {item!r}: STACK=URL with STACK a stage of the path ({', '.join(path.names)})")
    return stack, url


def _stack(args: argparse.Namespace, project: Path, name: str, path: PromotionPath) -> Any:
    if not args.offline:
        from release.stacks import AutomationStack

        try:
            return AutomationStack(name, project)
        except Exception as error:  # the Automation API raises plain errors when the CLI or the stack is missing
            raise Usage(f"cannot open the Pulumi stack {name!r} ({error}); rehearse with --offline --scenario good") from None
    from rehearsal.run import pace
    from release.stacks import OfflineStack

    # The rehearsal's stages keep their state between promotions, as real stacks do (tag after tag,
    # each replacing the last one promoted); --reset starts them over from their stack files.
    return OfflineStack(name, project, pace(args.service), reset=args.reset)


def rehearsal_pace(path: PromotionPath) -> PromotionPath:
    """A rehearsal's path: every soak and watch at most `REHEARSAL_WINDOW` seconds, as its analysis
    runs faster (`rehearsal.run.pace`)."""
    stages = tuple(
        dataclasses.replace(stage, promotion=dataclasses.replace(
            stage.promotion, soak_seconds=min(stage.promotion.soak_seconds, REHEARSAL_WINDOW), watch_seconds=min(stage.promotion.watch_seconds, REHEARSAL_WINDOW),
        ))
        for stage in path.stages
    )
    return dataclasses.replace(path, stages=stages)


def _lease_store(args: argparse.Namespace, project: Path, name: str) -> LeaseStore:
    if args.offline:
        return FileLeaseStore(_workspace(project, name) / "leases" / f"{args.service}.json")
    return GitRefLeaseStore(project, name, args.service)


@contextlib.contextmanager
def _rehearsals(args: argparse.Namespace, stacks: list[Any]) -> Iterator[dict[str, Any]]:
    """Each stage's synthetic service and Prometheus, with --scenario; none otherwise."""
    if args.scenario is None:
        yield {}
        return
    from rehearsal import SCENARIOS
    from rehearsal.run import WARM_UP, path_rehearsal

    if args.scenario not in SCENARIOS:
        raise Usage(f"--scenario {args.scenario!r}: one of {', '.join(sorted(SCENARIOS))}")
    # CAREPATH_REHEARSAL_WARM_UP shortens the stable traffic every stage's baseline starts from (tests).
    warm_up = float(os.environ.get("CAREPATH_REHEARSAL_WARM_UP", WARM_UP))
    with path_rehearsal(stacks, args.tag, args.scenario, service=args.service, warm_up=warm_up) as rehearsed:
        for name, stage in rehearsed.items():
            print(f"rehearsal {name}: scenario {args.scenario}, Prometheus {stage.prometheus_url}, synthetic {args.service} {stage.synthetic.url}")
        yield dict(rehearsed)


def _handle(args: argparse.Namespace, project: Path, stack: Any, lease: Any, run_id: str, images: Any, rehearsed: Any, prometheus: str) -> StageHandle:
    from release.ledger import GitLedger
    from release.prometheus import PrometheusMetrics
    from release.stacks import stack_file_path

    if args.offline:
        audit = AuditLog(stack.workspace / "audit.jsonl", stack.name)
        ledger = stack.ledger()
    else:
        audit = AuditLog(project / ".carepath" / "audit" / f"{stack.name}.jsonl", stack.name)
        ledger = GitLedger(project, stack_file_path(project, stack.name))
    if rehearsed is None:
        driver = Driver(stack, PrometheusMetrics(prometheus, service=args.service), audit, images, service=args.service, lease=lease, ledger=ledger, run_id=run_id)
        return StageHandle(driver, lambda: driver.verification_target(driver.settings()))
    from rehearsal.run import HISTORY_STEP

    synthetic = rehearsed.synthetic
    metrics = PrometheusMetrics(rehearsed.prometheus_url, service=args.service)
    driver = Driver(stack, metrics, audit, images, service=args.service, lease=lease, ledger=ledger, run_id=run_id, test_url=synthetic.test_url, history_step=HISTORY_STEP)

    def target() -> tuple[str, str]:
        if driver.config().rollout.strategy == "blue-green":
            return synthetic.test_url, ""
        return synthetic.url, driver.verification_target(driver.settings())[1]

    return StageHandle(driver, target, synthetic.promoted)


def _reports(args: argparse.Namespace, project: Path, path: PromotionPath, evidence: Mapping[str, EvidenceStore], stacks: Mapping[str, Any]) -> Reports:
    """Writes a stage's report (linking the other stages') and the path's page; names the report."""
    from core.signals import catalogue
    from release.report import PromotionLinks, promotion_links, promotion_page, render, render_promotion

    directory: Path = args.report_dir

    def report_name(stack: str) -> str:
        return f"release-{stack}-{args.service}-{args.tag}.html"

    def links(current: Optional[str]) -> PromotionLinks:
        events = {name: store.events(args.tag) for name, store in evidence.items()}
        return promotion_links(args.service, args.tag, path.names, events, current, {current: report_name(current)} if current else None)

    def write(stack: Optional[str], run: Optional[ReleaseRun]) -> Optional[str]:
        directory.mkdir(parents=True, exist_ok=True)
        name = None
        if stack is not None and run is not None:
            audit = AuditLog(stacks[stack].workspace / "audit.jsonl" if args.offline else project / ".carepath" / "audit" / f"{stack}.jsonl", stack)
            settings = settings_of(stacks[stack].config(), stack)
            signals = catalogue(args.service, settings.service(args.service).rollout.analysis.signals)
            name = report_name(stack)
            (directory / name).write_text(render(run, audit.entries(), signals, promotion=links(stack)), encoding="utf-8")
        (directory / promotion_page(args.service, args.tag)).write_text(render_promotion(links(None)), encoding="utf-8")
        return name

    return write
