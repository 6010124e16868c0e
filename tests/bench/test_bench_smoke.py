"""Smoke test of the benchmark harness: one tiny scenario end to end, shape and counts only.

Starts the benchmark's own stack (as `agent bench` does), runs the resume scenario with
two samples and checks the results document. Never asserts timings.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bench import runner
from bench.harness import Params

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(240)
async def test_resume_scenario_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: the quick sizes, shrunk to two resume samples.
    tiny = dataclasses.replace(Params.for_mode(quick=True), resume_samples=2)
    monkeypatch.setattr(Params, "for_mode", classmethod(lambda cls, quick: tiny))

    # Act
    document = await runner.run_benchmark(quick=True, only=["resume"], output_dir=tmp_path)

    # Assert
    written = json.loads((tmp_path / runner.JSON_NAME).read_text())
    assert written["mode"] == "quick"
    assert set(written["machine"]) >= {"cpu", "cores", "memory_gib", "os", "python"}
    [scenario] = written["scenarios"]
    assert scenario["key"] == "resume"
    assert scenario["error"] is None
    [figure] = scenario["figures"]
    assert figure["unit"] == "ms"
    assert figure["target"] == "<= 200"
    assert isinstance(figure["value"], float)
    assert scenario["raw"]["samples"] == 2
    assert scenario["distributions_ms"]["resume -> next activity"]["count"] == 2
    assert document["chart_path"] is not None
    assert (tmp_path / runner.CHART_NAME).stat().st_size > 0


async def test_unknown_scenario_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown scenarios: nope"):
        await runner.run_benchmark(quick=True, only=["nope"], output_dir=tmp_path)
