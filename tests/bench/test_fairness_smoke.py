"""Smoke test of the fairness scenario: tiny sizes end to end, shape and counts only.

Starts the benchmark's own stack (as `agent bench` does); never asserts timings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import runner
from bench.scenarios import fairness

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(300)
async def test_fairness_scenario_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: A floods 8 tasks under a quota of 2; B takes one sample per side.
    tiny = fairness.Sizes(flood=8, quota=2, samples=1)
    monkeypatch.setattr(fairness, "sizes", lambda quick: tiny)

    # Act
    await runner.run_benchmark(quick=True, only=["fairness"], output_dir=tmp_path)

    # Assert
    written = json.loads((tmp_path / runner.JSON_NAME).read_text())
    [scenario] = written["scenarios"]
    assert scenario["key"] == "fairness"
    assert scenario["error"] is None
    [figure] = scenario["figures"]
    assert figure["unit"] == "x"
    assert figure["target"] == "<= 2"
    assert isinstance(figure["value"], float)
    assert figure["value"] > 0
    raw = scenario["raw"]
    assert (raw["flood"], raw["quota"], raw["samples"]) == (8, 2, 1)
    assert raw["a_queued_at_post"] >= 8 - 2
    assert raw["a_still_queued_after_b"] >= 1
    assert (len(raw["idle_ms"]), len(raw["loaded_ms"])) == (2, 1)  # idle: before and after
    assert scenario["distributions_ms"]["B start, A flooding"]["count"] == 1
