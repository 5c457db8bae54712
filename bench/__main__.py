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

from offline.harness import ROOT, STACKS, run_stack

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


def release_bench(releases: int = 200) -> None:
    """The driver's analysis against Flagger's default rule on the same simulated traffic."""
    from release.analysis import Gates
    from release.simulation import Scenario, flagger, ours, summarise

    gates = Gates()
    scenarios = [
        Scenario("good (0.5 %, as stable)", 0.005),
        Scenario("2x stable (1 %)", 0.01),
        Scenario("10x stable (5 %)", 0.05),
        Scenario("broken (50 %)", 0.5),
        Scenario("p95 +50 %", 0.005, 1.5),
        Scenario("p95 +25 %", 0.005, 1.25),
    ]
    print(
        f"Release analysis, {releases} seeded releases per scenario: 100 req/s, stable at 0.5 % 5xx, canary steps 5-10-25-50-75-100 %."
    )
    print(
        f"ours: SPRT alpha {gates.alpha}, beta {gates.beta}, good <= {gates.good_factor:g}x / bad >= {gates.bad_factor:g}x stable, "
        "checks every 10 s; flagger: success rate >= 99 % per 60 s, 5 failed checks roll back"
    )
    print(f"{'scenario':<26}{'rule':<9}{'promoted':>9}{'rolled back':>12}{'failed req':>11}{'decision s':>11}{'promotion s':>12}")
    for scenario in scenarios:
        for name, judge in (("ours", ours), ("flagger", flagger)):
            summary = summarise([judge(scenario, seed) for seed in range(releases)])
            promotion = f"{summary.mean_seconds_to_promotion:.0f}" if summary.mean_seconds_to_promotion is not None else "-"
            print(
                f"{scenario.name:<26}{name:<9}{summary.promotion_rate:>8.1%}{summary.rollback_rate:>12.1%}"
                f"{summary.mean_failed:>11.1f}{summary.mean_seconds_to_decision:>11.0f}{promotion:>12}"
            )
    print(
        f"bound: a canary at >= {gates.bad_factor:g}x stable's 5xx ratio is promoted with probability <= "
        f"beta/(1-alpha) = {gates.beta / (1 - gates.alpha):.2%}; a good one rolled back with <= alpha/(1-beta) = {gates.alpha / (1 - gates.beta):.2%}"
    )


if __name__ == "__main__":
    sys.exit(main())
