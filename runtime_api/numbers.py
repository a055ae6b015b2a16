"""Lenient number parsing for untrusted JSON: the one definition every module uses."""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> float | None:
    """A finite float, or None for anything missing, boolean, non-numeric, NaN or infinite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        return None
    return parsed if math.isfinite(parsed) else None
