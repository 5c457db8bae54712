"""The audit log: every decision of a release, appended as one JSON line.

A healthcare service has to show why a version reached patients: each line says
what was done or decided, when, by whom, on which stack, with the numbers and
gate results behind it. The file is append-only from here; keep it with the
release records.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
from pathlib import Path
from typing import Any, Callable


def who() -> str:
    """The operator: `CAREPATH_OPERATOR`, the GitHub actor in a workflow, or the login name."""
    return os.environ.get("CAREPATH_OPERATOR") or os.environ.get("GITHUB_ACTOR") or getpass.getuser()


class AuditLog:
    def __init__(self, path: Path, stack: str, now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.timezone.utc)):
        self.path, self.stack, self.now = path, stack, now
        path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, action: str, **details: Any) -> dict[str, Any]:
        entry = {"time": self.now().isoformat(), "stack": self.stack, "operator": who(), "action": action, **details}
        with self.path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
        return entry

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
