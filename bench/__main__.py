"""`make bench`: wall time of the offline plan per stack against its floor, of the test suite,
and the release driver's analysis against Flagger's default rule on simulated releases.

Two floors, each a fresh interpreter that does nothing but load SDK code:

- import floor: imports, from the Pulumi SDKs, the class of every resource type
  the stack registers (`from pulumi_aws.ecr import Repository`, ...). The SDKs
  load a module's types lazily, on first use; this forces exactly those loads.
- type floor: the same, plus resolving each class's argument types, which the
  SDK does the first time it registers a resource of that type. Some types
  reference other modules: `eks.ClusterArgs` names `pulumi_aws.ec2` types, and
  loading that module (180 submodules) costs more than all the rest together.
  No program registering an `eks.Cluster` avoids it, so this is the real floor.

Everything above the type floor is ours: settings, the program, the mock engine,
rendering. Each figure is the median of several fresh-process runs.
"""

from __future__ import annotations

import importlib
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from offline.harness import ROOT, STACKS, run_stack

if TYPE_CHECKING:
    from release.simulation import Summary

RUNS = 7
TARGET_RATIO = 1.5
TARGET_SUITE_SECONDS = 60


def sdk_import(type_token: str) -> str | None:
    """The import statement that loads a resource type's class; None for our own components.
    Kubernetes kinds the SDK has no class for (CRDs) are its generic CustomResource."""
    package, module, name = type_token.split(":")
    if package == "carepath" or type_token == "pulumi:pulumi:Stack":
        return None
    if package == "pulumi" and module == "providers":
        return f"from pulumi_{name} import Provider"
    if package == "kubernetes":
        group, version = module.split("/")
        path = f"pulumi_kubernetes.{group.split('.')[0]}.{version}"
        try:
            built_in = hasattr(importlib.import_module(path), name)
        except ImportError:
            built_in = False
        return f"from {path} import {name}" if built_in else "from pulumi_kubernetes.apiextensions import CustomResource"
    python_module = module.split("/")[0]
    path = f"pulumi_{package}" + ("" if python_module == "index" else f".{python_module}")
    return f"from {path} import {name}"


def floor_scripts(stack: str) -> tuple[str, str]:
    """The import floor and the type floor of a stack (see the module docstring)."""
    imports = sorted({i for i in (sdk_import(r.type) for r in run_stack(stack).resources) if i})
    import_floor = "\n".join(["import pulumi", *imports])
    classes = [line.split()[-1] for line in imports]
    resolve = [
        "from pulumi import _types",
        # ConfigMap and Secret name theirs ...InitArgs, beside their ...Args input types.
        "def args_of(cls): m = sys.modules[cls.__module__]; return getattr(m, cls.__name__ + 'InitArgs', None) or getattr(m, cls.__name__ + 'Args')",
        *(f"_types.input_type_types(args_of({c}))" for c in classes if c != "CustomResource"),  # no args class
    ]
    type_floor = "\n".join(["import sys", import_floor, *resolve])
    return import_floor, type_floor


def median_seconds(command: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    python = sys.executable
    print(f"Offline plan wall time, median of {RUNS} fresh processes each (target: within {TARGET_RATIO}x of the floor)")
    print(f"{'stack':<12}{'plan':>8}{'type floor':>12}{'ratio':>7}{'import floor':>14}{'ratio':>7}  resource classes")
    for stack in STACKS:
        import_floor, type_floor = floor_scripts(stack)
        plan = median_seconds([python, "-m", "offline", "plan", stack, "--json"])
        by_types = median_seconds([python, "-c", type_floor])
        by_imports = median_seconds([python, "-c", import_floor])
        classes = ", ".join(sorted({line.split()[-1] for line in import_floor.splitlines()[1:]}))
        print(
            f"{stack:<12}{plan:>7.2f}s{by_types:>11.2f}s{plan / by_types:>6.2f}x"
            f"{by_imports:>13.2f}s{plan / by_imports:>6.2f}x  {classes}"
        )
    start = time.perf_counter()
    subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    print(f"test suite: {time.perf_counter() - start:.1f}s (target: under {TARGET_SUITE_SECONDS}s)")
    print()
    release_bench()
    return 0


def _judged(job: tuple[str, int, str]) -> tuple[str, str, Summary]:
    """One scenario's releases under one rule (a worker process's job)."""
    from release.simulation import flagger, ours, scenarios, summarise

    name, releases, rule = job
    scenario = next(s for s in scenarios() if s.name == name)
    if rule == "ours":
        results = [ours(scenario, seed) for seed in range(releases)]
    else:
        results = [flagger(scenario, seed, threshold=int(rule.rsplit("=", 1)[1])) for seed in range(releases)]
    return name, rule, summarise(results)


RULES = ("ours", "flagger t=1", "flagger t=5")


def release_bench(releases: int = 200) -> None:
    """This project's judge and Flagger's rule (thresholds 1 and 5) on the same simulated traffic,
    then the targets checked against the figures."""
    import multiprocessing

    from release.simulation import scenarios, wald_floor

    all_scenarios = scenarios()
    jobs = [(s.name, releases, rule) for s in all_scenarios for rule in RULES]
    with multiprocessing.Pool(processes=2) as pool:
        results = {(name, rule): summary for name, rule, summary in pool.map(_judged, jobs)}
    print(
        f"Release judgement, {releases} seeded releases per scenario and rule. Stable at 0.5 % 5xx, 100 req/s unless said; "
        "latency through Prometheus's default buckets; ours checks every 10 s (ladder 1-5-10-25-50-75-100 %, sized by traffic), "
        "flagger ticks every 60 s (success rate >= 99 %, p99 <= 500 ms, no value fails)."
    )
    print(f"{'scenario':<28}{'rule':<13}{'promoted':>9}{'rolled back':>12}{'undecided':>10}{'failed req':>11}{'decision s':>11}{'promotion s':>12}")
    for scenario in all_scenarios:
        for rule in RULES:
            summary = results[(scenario.name, rule)]
            undecided = 1 - summary.promotion_rate - summary.rollback_rate
            promotion = f"{summary.mean_seconds_to_promotion:.0f}" if summary.mean_seconds_to_promotion is not None else "-"
            print(
                f"{scenario.name:<28}{rule:<13}{summary.promotion_rate:>8.1%}{summary.rollback_rate:>12.1%}{undecided:>10.1%}"
                f"{summary.mean_failed:>11.1f}{summary.mean_seconds_to_decision:>11.0f}{promotion:>12}"
            )
    print()
    ours = {s.name: results[(s.name, "ours")] for s in all_scenarios}
    by_name = {s.name: s for s in all_scenarios}
    bad = [n for n, s in by_name.items() if s.bad and "triage" not in n and "token" not in n and "long" not in n]
    good = [n for n, s in by_name.items() if not s.bad and "1.5x" not in n]
    worst_promoted = max(bad, key=lambda n: ours[n].promotion_rate)
    worst_rolled_back = max(good, key=lambda n: ours[n].rollback_rate)
    print("Targets (ours):")
    print(f"  canary at >= 5x stable's failures promoted: at most {ours[worst_promoted].promotion_rate:.1%} ({worst_promoted}); target <= 1 %")
    print(f"  canary as good as stable rolled back: at most {ours[worst_rolled_back].rollback_rate:.1%} ({worst_rolled_back}); target <= 5 %")
    for name, factor in (("5x stable 5xx", 5), ("10x stable 5xx", 10), ("5 req/s, 10x", 10)):
        floor = wald_floor(0.005, 0.005 * factor)
        print(f"  failed requests before rollback, {name}: {ours[name].mean_failed:.1f} against the sequential floor {floor:.2f} ({ours[name].mean_failed / floor:.2f}x; target <= 2x)")
    print(f"  broken canary: {ours['broken (50 % 5xx)'].mean_failed:.1f} failed requests; two 10 s checks at its first weight are ~10")
    flagger_time = results[("good (as stable)", "flagger t=5")].mean_seconds_to_promotion
    print(f"  good canary promoted at 100 req/s in {ours['good (as stable)'].mean_seconds_to_promotion:.0f} s; flagger t=5 {flagger_time:.0f} s (target: no slower)")
    print(f"  good canary promoted at 5 req/s in {ours['5 req/s, good'].mean_seconds_to_promotion:.0f} s (target <= 900 s)")
    print(f"  triage-only regression rolled back: {ours['triage 95 -> 85 %'].rollback_rate:.1%} (target >= 99 %)")
    never = [n for n in ("Prometheus answers NaN", "canary metrics late 60 s") if n in ours]
    print("  NaN or missing metrics promoted: " + ", ".join(f"{n} {ours[n].promotion_rate:.1%}" for n in never) + " (NaN: target 0 %; late metrics promote once they appear)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["release"]:  # python -m bench release [RELEASES]: the judgement part alone
        release_bench(int(sys.argv[2]) if len(sys.argv) > 2 else 200)
        sys.exit(0)
    sys.exit(main())
