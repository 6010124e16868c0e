"""Result types of the benchmark and the statistics it reports."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Comparison(StrEnum):
    """How a measurement is compared with its target."""

    AT_MOST = "<="
    AT_LEAST = ">="


@dataclass(frozen=True)
class Target:
    """A goal of the project for one figure."""

    comparison: Comparison
    value: float

    def met_by(self, measured: float) -> bool:
        """Whether `measured` meets the target."""
        if self.comparison is Comparison.AT_MOST:
            return measured <= self.value
        return measured >= self.value

    def miss(self, measured: float) -> float:
        """How far `measured` is from the target, as a fraction of the target (0 if met)."""
        if self.met_by(measured) or self.value == 0:
            return 0.0
        return abs(measured - self.value) / abs(self.value)

    def __str__(self) -> str:
        return f"{self.comparison.value} {self.value:g}"


def at_most(value: float) -> Target:
    """Target: the measurement must not exceed `value`."""
    return Target(Comparison.AT_MOST, value)


def at_least(value: float) -> Target:
    """Target: the measurement must reach `value`."""
    return Target(Comparison.AT_LEAST, value)


@dataclass(frozen=True)
class Figure:
    """One printed figure: a ratio to a same-run baseline, a count, or a raw number."""

    name: str
    value: float | None
    unit: str = ""
    target: Target | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None without a target or a value)."""
        if self.target is None or self.value is None:
            return None
        return self.target.met_by(self.value)

    def as_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "target": str(self.target) if self.target else None,
            "met": self.met,
            "miss_fraction": (
                self.target.miss(self.value)
                if self.target is not None and self.value is not None
                else None
            ),
            "note": self.note,
        }


@dataclass
class ScenarioResult:
    """Everything one scenario measured."""

    key: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    distributions: dict[str, list[float]] = field(default_factory=dict)
    """Latency samples in milliseconds, by series name, for the chart."""
    error: str | None = None
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """JSON form (distributions summarised, not dumped)."""
        return {
            "key": self.key,
            "title": self.title,
            "figures": [f.as_json() for f in self.figures],
            "raw": self.raw,
            "distributions_ms": {
                name: summarise(values) for name, values in self.distributions.items()
            },
            "error": self.error,
            "seconds": round(self.seconds, 2),
        }


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct`-th percentile with linear interpolation (NaN when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarise(values: Sequence[float]) -> dict[str, float | int]:
    """Count, min, p50, p95, p99, max and mean of some samples."""
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "min": round(min(values), 3),
        "p50": round(percentile(values, 50), 3),
        "p95": round(percentile(values, 95), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
        "mean": round(sum(values) / len(values), 3),
    }


def ratio(numerator: float, denominator: float) -> float | None:
    """`numerator / denominator`, or None when the denominator is 0."""
    return numerator / denominator if denominator else None
