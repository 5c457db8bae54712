"""Kubernetes resource quantities ("250m", "1", "512Mi", "1G") as numbers, to compare them."""

from __future__ import annotations

import re
from decimal import Decimal

_SUFFIX = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_PATTERN = re.compile(r"(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?")


def parse_quantity(text: str) -> Decimal:
    """The quantity's value in base units; ValueError when it is not a quantity."""
    match = _PATTERN.fullmatch(text)
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    return Decimal(match[1]) * _SUFFIX[match[2] or ""]
