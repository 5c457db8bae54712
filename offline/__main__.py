"""`python -m offline plan|diff STACK [--set key=value ...] [--unset key ...] [--json]`

plan: what `pulumi up` would create for the stack, from its stack file and overrides.
diff: what would change between the stack file as it is (or, with --base-config, another
      version of it, such as the base branch's in a pull request) and with the overrides.
Keys are `--path` style, as `pulumi config set --path` reads them (`services.chat-api.rollout.canary.weight`,
`monitoring.receivers[0].name`, `["key.with.dots"]`; an index may append at the list's end), in the
`carepath:` namespace unless prefixed (`aws:region`); `--set` splits on the first `=`. A JSON object
sets a whole mapping, such as a new service (`--set 'services.triage-api={"tag": "v0.3.0", "pathPrefix":
"/triage", "rollout": {"strategy": "rolling"}}'`). `--set-words`/`--unset-words` take make's `SET`/`UNSET`
whole: words split on spaces as a shell does, but never inside [...] or {...}.
An override that is no such key, or goes through a string, into a mapping by index or past a list's
end, exits 2 with one line naming it.
Exit code 2 on bad config, with every problem listed, and on a stack file refused by the strict
reader (`offline.stack_yaml`: one line, file:line:column: the problem); warnings (keys that have no effect)
go to stderr, each prefixed `warning:`, so `--json` output stays valid.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.paths import PathError
from core.settings import SettingsError
from core.stack_config import config_path, split_words
from offline.diff import diff_json, diff_plans, render_diff
from offline.harness import STACKS, ProgramFailed, parse_value, run_stack
from offline.render import render_json, render_tree
from offline.stack_yaml import StackFileError


def _override(text: str) -> tuple[str, object]:
    """`key=value` (split on the first `=`, so `x=a=b` sets `a=b`), its key and value checked."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"{text}: expected key=value")
    try:
        config_path(key)
        return key, parse_value(value)
    except ValueError as error:
        raise ValueError(f"{key}: {error}") from None


def _unset(key: str) -> str:
    try:
        config_path(key)
    except PathError as error:
        raise PathError(f"{key}: {error}") from None
    return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline", description=(__doc__ or "").split("\n\n")[1])
    parser.add_argument("command", choices=("plan", "diff"))
    parser.add_argument("stack", choices=STACKS)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--unset", action="append", default=[], metavar="KEY")
    parser.add_argument("--set-words", action="append", default=[], metavar="TEXT", help="assignments, split as make's SET is (core.stack_config.split_words)")
    parser.add_argument("--unset-words", action="append", default=[], metavar="TEXT", help="keys, split the same way")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--base-config", type=Path, metavar="FILE", help="diff: the stack file to compare against")
    args = parser.parse_args(argv)
    try:
        overrides = dict(_override(text) for text in [*args.overrides, *(word for words in args.set_words for word in split_words(words))])
        unset = [_unset(key) for key in [*args.unset, *(word for words in args.unset_words for word in split_words(words))]]
    except ValueError as error:  # not a `--path` key and value
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        head = run_stack(args.stack, overrides, unset)
        for warning in head.warnings:  # on stderr, so `--json` output stays valid
            print(f"warning: {warning}", file=sys.stderr)
        if args.command == "plan":
            print(render_json(head) if args.json else render_tree(head))
        else:
            diff = diff_plans(run_stack(args.stack, stack_file_path=args.base_config), head)
            print(diff_json(diff) if args.json else render_diff(diff))
    except PathError as error:  # a key that cannot go where it points: through a string, past a list's end, ...
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StackFileError as error:  # one line: file:line:column: what is wrong and what to write
        print(error, file=sys.stderr)
        return 2
    except ProgramFailed as failure:
        if isinstance(failure.cause, SettingsError):
            print(f"stack {args.stack}: {failure.cause}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
