from decimal import Decimal

import pytest

from core.quantity import parse_quantity


@pytest.mark.parametrize(
    "text, value",
    [("250m", Decimal("0.25")), ("1", 1), ("1.5", Decimal("1.5")), ("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1G", 10**9)],
)
def test_quantities_parse_to_base_units(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "1.", "m", "1Gb", "-1", "1 Gi"])
def test_non_quantities_are_rejected(text):
    with pytest.raises(ValueError):
        parse_quantity(text)
