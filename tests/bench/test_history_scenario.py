"""The history scenario: its baseline's extrapolation, and one tiny run end to end.

The end-to-end run starts the benchmark's own stack (as `agent bench` does) with two
short tasks and a short baseline, and checks shape and counts only, never timings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import runner
from bench.bare_history import HISTORY_COUNT_LIMIT, HISTORY_SIZE_LIMIT_BYTES
from bench.scenarios import history


def quadratic_points(a: float, count: int) -> list[dict[str, int]]:
    """Baseline points whose bytes grow as `a * m**2` and events as `10 * m`."""
    return [
        {"milestones": m, "calls": 2 * m + 1, "events": 10 * m, "bytes": round(a * m * m)}
        for m in range(1, count + 1)
    ]


def test_the_baseline_ends_where_its_parabola_meets_the_size_limit() -> None:
    # Arrange: 2 KiB * m^2 reaches 50 MiB at m = 160.
    points = quadratic_points(2048.0, 20)

    # Act
    end = history.extrapolated_end(points)

    # Assert
    assert end is not None
    assert end["limit"] == "size"
    assert end["milestones"] == 160
    assert end["bytes"] >= HISTORY_SIZE_LIMIT_BYTES
    assert end["calls"] == 2 * 160 + 1


def test_the_baseline_ends_at_the_event_limit_when_its_bytes_stay_small() -> None:
    # Arrange: tiny answers, so the event count ends it first (10 per milestone).
    points = quadratic_points(0.01, 20)

    # Act
    end = history.extrapolated_end(points)

    # Assert
    assert end is not None
    assert end["limit"] == "event count"
    assert end["milestones"] == HISTORY_COUNT_LIMIT // 10


def test_too_few_points_give_no_extrapolation() -> None:
    assert history.extrapolated_end(quadratic_points(1.0, 2)) is None


@pytest.mark.e2e
@pytest.mark.timeout(600)
async def test_history_scenario_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: two short tasks; the baseline goes as far as the longer one.
    monkeypatch.setattr(history, "QUICK_MILESTONES", (2, 5))

    # Act
    await runner.run_benchmark(quick=True, only=["history"], output_dir=tmp_path)

    # Assert
    written = json.loads((tmp_path / runner.JSON_NAME).read_text())
    [scenario] = written["scenarios"]
    assert scenario["key"] == "history"
    assert scenario["error"] is None
    project = scenario["raw"]["project"]
    assert [p["milestones"] for p in project] == [2, 5]
    assert all(p["calls"] >= 2 * p["milestones"] for p in project)
    assert all(0 < p["max_run_events"] <= p["total_events"] for p in project)
    assert all(p["max_run_bytes"] > 0 for p in project)
    peer = scenario["raw"]["peer_points"]
    assert [p["milestones"] for p in peer] == [1, 2, 3, 4, 5]
    assert scenario["raw"]["peer_stopped_near_limit"] is False
    names = [f["name"] for f in scenario["figures"]]
    assert "bare peer / project, largest run's bytes at 5 milestones" in names
    chart = tmp_path / history.CHART_NAME
    assert chart.read_text().lstrip().startswith("<?xml")
    assert "<svg" in chart.read_text()
