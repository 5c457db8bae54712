"""`python -m release COMMAND STACK`: drive a release of chat-api through Pulumi.

  status STACK                 strategy, tracks, weights, and live health per version
  start STACK --tag TAG        canary: first step; blue-green: deploy to the idle colour; rolling: set the tag
  advance | promote | abort    one canary step, promotion, or all traffic back on stable
  run STACK --tag TAG          the whole release, hands-off, gated on Prometheus

The stack is the real one (Automation API, needs the Pulumi CLI) or, with
--offline, a rehearsal on the offline plan engine that checks the design's
invariants after every update. Every decision is appended to the audit log.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.release import plan_release
from offline.harness import ROOT, STACKS
from release.audit import AuditLog
from release.driver import Driver
from release.ports import MetricsError, StackError
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("start", "run") and not args.tag:
        print(f"{args.command} needs --tag", file=sys.stderr)
        return 2
    stack = OfflineStack(args.stack) if args.offline else AutomationStack(args.stack)
    audit = AuditLog(args.audit_log or ROOT / ".carepath" / "audit" / f"{args.stack}.jsonl", args.stack)
    metrics = PrometheusMetrics(args.prometheus)
    driver = Driver(stack, metrics, audit, abort_on_failure=args.abort_on_failure)
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
                args.report.write_text(render(args.stack, args.tag, run, audit.entries()))
                print(f"report: {args.report}")
            return 0 if run.outcome in ("promoted", "switched") else 1
    except StackError as error:
        print(f"{args.stack}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted; the stack's config says where the release stands: rerun `run {args.stack} --tag {args.tag}` to resume")
        return 130
    return 0


def status(driver: Driver, metrics: PrometheusMetrics) -> str:
    settings = driver.settings()
    plan = plan_release(settings)
    lines = [f"stack {settings.stack}: strategy {settings.rollout.strategy}"]
    weights = dict(plan.weights)
    for track in plan.tracks:
        route = f"{weights[track.track]} %" if track.track in weights else ("test listener" if track.track == plan.test_track else "no traffic")
        lines.append(f"  {track.deployment:<16} {track.tag:<12} {track.replicas} replicas  {route}")
    try:
        samples = metrics.sample(settings.namespace, 300, 300)
        for track, sample in sorted(samples.items()):
            ratio = f"{sample.error_ratio * 100:.2f} %" if sample.error_ratio is not None else "-"
            p95 = f"{sample.p95_seconds:.2f} s" if sample.p95_seconds is not None else "-"
            lines.append(f"  live {track:<8} {sample.requests / 300:.1f} req/s  5xx {ratio}  p95 {p95} (last 5 m)")
    except MetricsError as error:
        lines.append(f"  live health unavailable: {error}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
