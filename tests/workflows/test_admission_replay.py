"""Replay every recorded `AdmissionWorkflow` history against today's code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from agent.temporal import data_converter
from tests.admission_histories import ADMISSION_HISTORIES
from workflows.admission_workflow import AdmissionWorkflow

HISTORY_FILES = sorted(ADMISSION_HISTORIES.glob("v*/*.json"))


def test_admission_histories_are_recorded() -> None:
    assert HISTORY_FILES, f"no admission history under {ADMISSION_HISTORIES}"


@pytest.mark.parametrize("path", HISTORY_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_recorded_admission_history_replays(path: Path) -> None:
    # Arrange
    text = await asyncio.to_thread(path.read_text)
    history = WorkflowHistory.from_json(f"admission-{path.stem}", text)
    replayer = Replayer(workflows=[AdmissionWorkflow], data_converter=data_converter)

    # Act
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    # Assert
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
