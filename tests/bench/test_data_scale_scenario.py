"""Smoke test of the data-at-scale scenario: the benchmark's own stack, a small bulk load,
the three reads timed at both sizes. Shape and counts only, never timings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bench import runner
from bench.harness import Params
from bench.scenarios.data_scale import READS

pytestmark = pytest.mark.e2e

SMALL_SCALE_EVENTS = 20_000


@pytest.mark.timeout(300)
async def test_data_scale_scenario_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: the quick sizes, shrunk to a small load and three requests per read.
    tiny = dataclasses.replace(
        Params.for_mode(quick=True), scale_requests=3, scale_events=SMALL_SCALE_EVENTS
    )
    monkeypatch.setattr(Params, "for_mode", classmethod(lambda cls, quick: tiny))

    # Act
    await runner.run_benchmark(quick=True, only=["data_scale"], output_dir=tmp_path)

    # Assert
    written = json.loads((tmp_path / runner.JSON_NAME).read_text())
    [scenario] = written["scenarios"]
    assert scenario["key"] == "data_scale"
    assert scenario["error"] is None
    assert [f["name"].split(" p50 ")[0] for f in scenario["figures"]] == list(READS)
    for figure in scenario["figures"]:
        assert figure["unit"] == "x"
        assert figure["target"] == "<= 1.5"
        assert isinstance(figure["value"], float)
    stored = scenario["raw"]["stored_events"]
    assert stored["small"] == 1_000
    assert stored["large"] >= SMALL_SCALE_EVENTS - 500
    assert all(d["count"] == 3 for d in scenario["distributions_ms"].values())
