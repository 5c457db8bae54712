"""`python -m offline plan|diff STACK [--set key=value ...] [--unset key ...] [--json]`

plan: what `pulumi up` would create for the stack, from its stack file and overrides.
diff: what would change between the stack file as it is (or, with --base-config, another
      version of it, such as the base branch's in a pull request) and with the overrides.
Keys are `--path` style (`services.chat-api.rollout.canary.weight`), in the `carepath:`
namespace unless prefixed (`aws:region`); a JSON object sets a whole mapping, such as a
new service (`--set 'services.triage-api={"tag": "v0.3.0", "pathPrefix": "/triage",
"rollout": {"strategy": "rolling"}}'`).
Exit code 2 on bad config, with every problem listed; warnings (keys that have no effect)
go to stderr, each prefixed `warning:`, so `--json` output stays valid.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.settings import SettingsError
from offline.diff import diff_json, diff_plans, render_diff
from offline.harness import STACKS, ProgramFailed, parse_value, run_stack
from offline.render import render_json, render_tree


def _override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, parse_value(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline", description=(__doc__ or "").split("\n\n")[1])
    parser.add_argument("command", choices=("plan", "diff"))
    parser.add_argument("stack", choices=STACKS)
    parser.add_argument("--set", dest="overrides", type=_override, action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--unset", action="append", default=[], metavar="KEY")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--base-config", type=Path, metavar="FILE", help="diff: the stack file to compare against")
    args = parser.parse_args(argv)
    overrides = dict(args.overrides)
    try:
        head = run_stack(args.stack, overrides, args.unset)
        for warning in head.warnings:  # on stderr, so `--json` output stays valid
            print(f"warning: {warning}", file=sys.stderr)
        if args.command == "plan":
            print(render_json(head) if args.json else render_tree(head))
        else:
            diff = diff_plans(run_stack(args.stack, stack_file_path=args.base_config), head)
            print(diff_json(diff) if args.json else render_diff(diff))
    except ProgramFailed as failure:
        if isinstance(failure.cause, SettingsError):
            print(f"stack {args.stack}: {failure.cause}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
