"""Replay every recorded history: a workflow change that would break running tasks fails CI.

Record (or refresh) the histories with `AGENT_RECORD_HISTORIES=1 pytest tests/workflows`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.workflows.conftest import HISTORIES_DIR
from workflows.task_workflow import TaskWorkflow

HISTORY_FILES = sorted(HISTORIES_DIR.glob("*.json"))


def test_histories_are_recorded() -> None:
    assert len(HISTORY_FILES) >= 10


@pytest.mark.parametrize("path", HISTORY_FILES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    # Arrange
    text = await asyncio.to_thread(path.read_text)
    history = WorkflowHistory.from_json(f"task-{path.stem}", text)
    replayer = Replayer(workflows=[TaskWorkflow], data_converter=pydantic_data_converter)

    # Act
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    # Assert
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
