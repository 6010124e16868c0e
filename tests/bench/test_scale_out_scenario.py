"""The scale-out scenario end to end at tiny sizes: two workers, two APIs, its own checks.

Shape and counts only (never timings): both workers ran activities, every socket on both
API processes received every event (the scenario raises otherwise).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bench import runner
from bench.harness import Params

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(600)
async def test_scale_out_runs_on_two_workers_and_relays_on_two_apis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    tiny = dataclasses.replace(
        Params.for_mode(quick=True),
        scale_out_concurrency=2,
        scale_out_tasks=4,
        scale_out_milestones=1,
        scale_out_followed=2,
    )
    monkeypatch.setattr(Params, "for_mode", classmethod(lambda cls, quick: tiny))

    # Act
    await runner.run_benchmark(quick=True, only=["scale_out"], output_dir=tmp_path)

    # Assert
    [scenario] = json.loads((tmp_path / runner.JSON_NAME).read_text())["scenarios"]
    assert scenario["error"] is None
    assert len(scenario["raw"]["activities_per_worker"]) == 2
    assert all(n > 0 for n in scenario["raw"]["activities_per_worker"].values())
    assert scenario["raw"]["events_stored_followed"] > 0
    names = [figure["name"] for figure in scenario["figures"]]
    assert names[0] == "tasks/s: 2 workers / 1 worker"
    assert scenario["figures"][0]["value"] > 0
