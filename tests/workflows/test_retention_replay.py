"""Replay every recorded `RetentionWorkflow` history against today's code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from agent.temporal import data_converter
from tests.retention_histories import RETENTION_HISTORIES
from workflows.retention_workflow import RetentionWorkflow

HISTORY_FILES = sorted(RETENTION_HISTORIES.glob("v*/*.json"))


def test_retention_histories_are_recorded() -> None:
    assert HISTORY_FILES, f"no retention history under {RETENTION_HISTORIES}"


@pytest.mark.parametrize("path", HISTORY_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_recorded_retention_history_replays(path: Path) -> None:
    # Arrange
    text = await asyncio.to_thread(path.read_text)
    history = WorkflowHistory.from_json(f"retention-{path.stem}", text)
    replayer = Replayer(workflows=[RetentionWorkflow], data_converter=data_converter)

    # Act
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    # Assert
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
