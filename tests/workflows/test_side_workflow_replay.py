"""Replay every recorded `AdmissionWorkflow` and `RetentionWorkflow` history against the code."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from agent.temporal import data_converter
from tests.recorded_histories import ADMISSION_HISTORIES, RETENTION_HISTORIES
from workflows.admission_workflow import AdmissionWorkflow
from workflows.retention_workflow import RetentionWorkflow

WORKFLOWS: dict[Path, type[Any]] = {
    ADMISSION_HISTORIES: AdmissionWorkflow,
    RETENTION_HISTORIES: RetentionWorkflow,
}
HISTORY_FILES = [
    (folder, path) for folder in WORKFLOWS for path in sorted(folder.glob("v*/*.json"))
]


@pytest.mark.parametrize("folder", list(WORKFLOWS), ids=lambda f: f.name)
def test_side_workflow_histories_are_recorded(folder: Path) -> None:
    assert sorted(folder.glob("v*/*.json")), f"no history under {folder}"


@pytest.mark.parametrize(
    ("folder", "path"),
    HISTORY_FILES,
    ids=[f"{f.name}/{p.parent.name}/{p.stem}" for f, p in HISTORY_FILES],
)
async def test_recorded_side_workflow_history_replays(folder: Path, path: Path) -> None:
    # Arrange
    text = await asyncio.to_thread(path.read_text)
    history = WorkflowHistory.from_json(f"{folder.name}-{path.stem}", text)
    replayer = Replayer(workflows=[WORKFLOWS[folder]], data_converter=data_converter)

    # Act
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    # Assert
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
