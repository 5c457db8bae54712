"""`python -m release COMMAND STACK`: drive a release of chat-api through Pulumi.

  status STACK                 strategy, tracks, weights, and live health per version
  start STACK --tag TAG        canary: first step; blue-green: deploy to the idle colour; rolling: set the tag
  advance | promote | abort    one canary step, promotion, or all traffic back on stable
  run STACK --tag TAG          the whole release, hands-off, gated on Prometheus

The stack is the real one (Automation API, needs the Pulumi CLI) or, with
--offline, a rehearsal on the offline plan engine that checks the design's
invariants after every update. With --scenario (good, bad-model, slow-first-token,
errors, no-metrics, long-answers, nan), `run --offline` also starts a synthetic
chat-api whose candidate behaves as the scenario says and a real Prometheus on
loopback scraping it (both stopped after), at a faster pace. Every decision is
appended to the audit log.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.release import plan_release
from core.settings import SettingsError
from offline.harness import ROOT, STACKS
from rehearsal import SCENARIOS
from rehearsal.run import HISTORY_STEP, PACE, rehearsal
from release.audit import AuditLog
from release.driver import Driver, http_status
from release.judge import Ratio
from release.ports import Metrics, MetricsError, StackError
from release.prometheus import PrometheusMetrics
from release.report import render
from release.stacks import AutomationStack, OfflineStack


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m release", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("command", choices=("status", "start", "advance", "promote", "abort", "run"))
    parser.add_argument("stack", choices=STACKS)
    parser.add_argument("--tag", help="the candidate image tag (start, run)")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus URL (e.g. through kubectl port-forward)")
    parser.add_argument("--offline", action="store_true", help="rehearse on the offline plan engine instead of the real stack")
    parser.add_argument("--audit-log", type=Path, help="default: .carepath/audit/<stack>.jsonl")
    parser.add_argument("--report", type=Path, help="write the HTML report here at the end of `run`")
    parser.add_argument("--abort-on-failure", action="store_true", help="abort the canary when pulumi up fails mid-release")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="with run --offline: rehearse against a synthetic chat-api and a real Prometheus")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("start", "run") and not args.tag:
        print(f"{args.command} needs --tag", file=sys.stderr)
        return 2
    if args.scenario and not (args.offline and args.command == "run"):
        print("--scenario rehearses a whole release: use it with `run --offline`", file=sys.stderr)
        return 2
    try:
        stack = OfflineStack(args.stack, PACE if args.scenario else None) if args.offline else AutomationStack(args.stack)
    except SettingsError as error:
        print(f"{args.stack}: {error}", file=sys.stderr)
        return 2
    audit = AuditLog(args.audit_log or ROOT / ".carepath" / "audit" / f"{args.stack}.jsonl", args.stack)
    if args.scenario:
        with rehearsal(stack, args.tag, args.scenario) as (url, service):
            print(f"rehearsal: scenario {args.scenario}, Prometheus {url}, synthetic chat-api {service.url}")
            smoke = lambda address: http_status(service.url + "/" + address.split("/", 3)[-1])  # noqa: E731
            driver = Driver(stack, PrometheusMetrics(url), audit, http_get=smoke, history_step=HISTORY_STEP)
            return _command(args, driver, audit)
    return _command(args, Driver(stack, PrometheusMetrics(args.prometheus), audit, abort_on_failure=args.abort_on_failure), audit)


def _command(args: argparse.Namespace, driver: Driver, audit: AuditLog) -> int:
    metrics = driver.metrics
    try:
        if args.command == "status":
            print(status(driver, metrics))
        elif args.command == "start":
            driver.start(args.tag)
        elif args.command == "advance":
            print(f"weight now {driver.advance()} %")
        elif args.command == "promote":
            driver.promote()
        elif args.command == "abort":
            driver.abort()
        else:
            run = driver.run(args.tag)
            print(f"{args.tag} on {args.stack}: {run.outcome}" + (f" ({run.message})" if run.message else ""))
            if args.report:
                args.report.write_text(render(run, audit.entries(), driver.signals()))
                print(f"report: {args.report}")
            return 0 if run.outcome in ("promoted", "switched") else 1
    except StackError as error:
        print(f"{args.stack}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted; the stack's config says where the release stands: rerun `run {args.stack} --tag {args.tag}` to resume")
        return 130
    return 0


def status(driver: Driver, metrics: Metrics) -> str:
    settings = driver.settings()
    plan = plan_release(settings)
    lines = [f"stack {settings.stack}: strategy {settings.rollout.strategy}"]
    weights = dict(plan.weights)
    for track in plan.tracks:
        route = f"{weights[track.track]} %" if track.track in weights else ("test listener" if track.track == plan.test_track else "no traffic")
        lines.append(f"  {track.deployment:<16} {track.tag:<12} {track.replicas} replicas  {route}")
    ratios = [s for s in driver.signals() if s.kind == "ratio"]
    tracks = {t.track: t.track for t in plan.tracks}
    try:
        readings = metrics.read(settings.namespace, ratios, "track", tracks, 300, 300)
    except MetricsError as error:
        return "\n".join([*lines, f"  live health unavailable: {error}"])
    for track in tracks:
        shares = [f"{s.name} {r.bad / r.total:.2%}" for s in ratios if isinstance(r := readings.get(s.name, {}).get(track), Ratio) and r.total > 0]
        requests = readings.get("errors", {}).get(track)
        rate = f"{requests.total / 300:.1f} req/s" if isinstance(requests, Ratio) else "no data"
        lines.append(f"  live {track:<8} {rate}  " + ", ".join(shares) + " (last 5 m)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
