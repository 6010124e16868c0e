"""Counters of the completions the simulator sends."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SimulatorStats:
    """Counters of completions being sent, served at `GET /sim/stats`."""

    completions_total: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def started(self) -> None:
        """Count a completion that starts being sent."""
        self.completions_total += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def finished(self) -> None:
        """Count a completion that is done (sent, cut, or abandoned by its client)."""
        self.in_flight -= 1

    def reset(self) -> None:
        """Zero the totals (in-flight completions stay counted)."""
        self.completions_total = 0
        self.max_in_flight = self.in_flight
