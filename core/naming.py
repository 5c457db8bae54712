"""Small pure rules the components share."""

from __future__ import annotations

import re


def node_ami_type(instance_type: str) -> str:
    """The EKS AL2023 AMI type for an instance type: Graviton families (a `g` after
    the generation digit: t4g, m7g, c7gn, r8gd) are ARM, the rest x86-64."""
    family = instance_type.split(".", 1)[0]
    match = re.fullmatch(r"[a-z]+\d+([a-z-]*)", family)
    graviton = bool(match) and "g" in match.group(1)
    return "AL2023_ARM_64_STANDARD" if graviton else "AL2023_x86_64_STANDARD"
