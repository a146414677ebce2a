"""What counts as a measured number, for every reader of trial results."""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> bool:
    """A measured number: an int or float, not inf or NaN. A bool is no measurement (True
    would pass as 1), nor is None or text (a record's missing or failed value)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)
