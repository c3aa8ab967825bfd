"""Small result types shared by the statistics, each turning itself into plain JSON-ready data."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """Plain Python data for ``json.dumps``: numpy scalars and arrays unwrapped, nan and inf as None
    (JSON has no NaN; an undefined statistic, e.g. kappa with one category, reads as null)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


class ToDict:
    def to_dict(self) -> dict[str, Any]:
        return jsonable(self)


@dataclasses.dataclass(frozen=True)
class Interval(ToDict):
    """A two-sided interval; ``method`` says how it was made (wilson, bootstrap-percentile, ...)."""

    low: float
    high: float
    method: str

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclasses.dataclass(frozen=True)
class Proportion(ToDict):
    """``count`` of ``n`` with its rate, a Wilson interval and, when computed, a cluster-bootstrap interval."""

    count: float
    n: int
    rate: float
    wilson: Interval
    bootstrap: Interval | None = None
