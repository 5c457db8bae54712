"""A service's promotion path: the stacks a tag goes through, first to last, read from each
stack's `services.<name>.promotion` (`core.settings.PromotionSettings`), whose `after` names
the stage it takes tags from. A path is one line: one first stage, each other stage after one
before it, none after two, no cycle, every stage reached from the first."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Mapping, Optional

from core.settings import PromotionSettings, Settings
from core.settings.rules import service_key


@dataclass(frozen=True)
class Stage:
    stack: str
    strategy: str  # the service's rollout.strategy on that stack
    promotion: PromotionSettings


class PathError(ValueError):
    """Every problem of a service's path; `problems` holds one line each."""

    def __init__(self, service: str, problems: list[str]):
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid promotion path of {service} ({count}):\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class PromotionPath:
    service: str
    stages: tuple[Stage, ...]  # in order, first to last

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(stage.stack for stage in self.stages)

    def _index(self, stack: str) -> int:
        if stack not in self.names:
            raise PathError(self.service, [f"{stack} is no stage of {self.service}'s path ({' -> '.join(self.names)})"])
        return self.names.index(stack)

    def stage(self, stack: str) -> Stage:
        return self.stages[self._index(stack)]

    def previous(self, stack: str) -> Optional[Stage]:
        index = self._index(stack)
        return self.stages[index - 1] if index > 0 else None

    def next(self, stack: str) -> Optional[Stage]:
        index = self._index(stack)
        return self.stages[index + 1] if index + 1 < len(self.stages) else None

    def window_seconds(self, stack: str) -> int:
        """How long the stage is watched after a promotion: max(watchSeconds, soakSeconds) when a
        stage follows it (the soak is watched time: a tag leaves only healthy), else watchSeconds."""
        promotion = self.stage(stack).promotion
        if self.next(stack) is None:
            return promotion.watch_seconds
        return max(promotion.watch_seconds, promotion.soak_seconds)


def _file(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def _files(stacks: list[str]) -> str:
    return ", ".join(_file(stack) for stack in stacks)


def _and(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}"


def promotion_path(service: str, stacks: Mapping[str, Settings]) -> PromotionPath:
    """The service's path over the stacks whose settings have `services.<service>.promotion`
    (`stacks`: by stack name): the stage without `after` first, then each stage whose `after`
    names the one before. Raises PathError listing every problem, each naming its stack file."""
    after_key = service_key(service, "promotion.after")
    stages = {
        name: Stage(name, settings.services[service].rollout.strategy, promotion)
        for name, settings in sorted(stacks.items())
        if service in settings.services and (promotion := settings.services[service].promotion) is not None
    }
    if not stages:
        with_service = [name for name, settings in sorted(stacks.items()) if service in settings.services]
        raise PathError(service, [
            f"no stack has a promotion for {service} (stacks with {service}: {', '.join(with_service) or 'none'}; "
            f"of all: {', '.join(sorted(stacks)) or 'none'}): add {service_key(service, 'promotion')} to each stage's stack file"
        ])
    after = {name: stage.promotion.after for name, stage in stages.items()}
    problems: list[str] = []
    for name, before in after.items():
        if before is not None and before not in stages:
            hint = difflib.get_close_matches(before, list(stages), n=1)
            meant = f"; did you mean {hint[0]!r}?" if hint else ""
            problems.append(
                f"{_file(name)}: {after_key}: {json.dumps(before)} is no stage of {service}'s path "
                f"(stacks with a promotion for {service}: {', '.join(stages)}){meant}"
            )
    firsts = [name for name, before in after.items() if before is None]
    if not firsts:
        problems.append(f"{_files(list(stages))}: {after_key}: every stage of {service}'s path names one before it; remove the key on the first stage")
    elif len(firsts) > 1:
        problems.append(
            f"{_files(firsts)}: {after_key}: {_and(firsts)} are each a first stage of {service}'s path (no after); "
            "a path has one: set after on all but the first"
        )
    for before in sorted({b for b in after.values() if b in stages}):
        followers = [name for name, b in after.items() if b == before]
        if len(followers) > 1:
            problems.append(
                f"{_files(followers)}: {after_key}: {_and(followers)} all follow {before}; a path does not branch: "
                "chain them, one after the other"
            )
    cycles = _cycles(after)
    for cycle in cycles:
        problems.append(f"{_files(cycle)}: {after_key}: {' after '.join((*cycle, cycle[0]))} is a cycle; a path runs from its first stage to its last")
    in_cycle = {name for cycle in cycles for name in cycle}
    if len(firsts) == 1:
        for name in stages:
            chain = _chain(name, after)
            if chain[-1] != firsts[0] and name not in in_cycle and after[name] in stages:
                problems.append(
                    f"{_file(name)}: {after_key}: {json.dumps(after[name])} does not lead to {service}'s first stage {firsts[0]} "
                    f"({' after '.join(chain)}), so no tag reaches {name}"
                )
    if problems:
        raise PathError(service, problems)
    order = [firsts[0]]
    followers = {b: name for name, b in after.items() if b is not None}
    while order[-1] in followers:
        order.append(followers[order[-1]])
    return PromotionPath(service, tuple(stages[name] for name in order))


def _chain(name: str, after: Mapping[str, Optional[str]]) -> list[str]:
    """`name`, the stage it follows, the one that follows, ... up to a stage with no known
    `after` or one already in the chain (a cycle)."""
    chain = [name]
    while (before := after.get(chain[-1])) in after and before not in chain:
        assert before is not None  # None is no stage
        chain.append(before)
    return chain


def _cycles(after: Mapping[str, Optional[str]]) -> list[list[str]]:
    """Each cycle of `after` once, starting at its first stage by name, in the order of `after`."""
    cycles: list[list[str]] = []
    for name in sorted(after):
        chain = _chain(name, after)
        if after[chain[-1]] == name and name == min(chain):
            cycles.append(chain)
    return cycles
