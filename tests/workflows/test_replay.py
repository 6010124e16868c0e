"""Replay every recorded history: a workflow change that would break running tasks fails CI.

`tests/histories/` holds one folder per version of the workflow code that recorded them,
and every folder is replayed: `v1/` predates `workflow.patched("start-task-local-activity")`,
`v2/` was recorded with the `start-task-local-activity`, `budget-reservation` and
`breakpoint-timeout-ends` patches in place, `v3/` also with `waiting-on-search-attribute`,
`v4/` also with `tools` (tasks whose attempts call tools), `v5/` also with
`continue-as-new` (a run that ends in continue-as-new and the run it started,
`test_long_sequential_task_continues_as_new_and_completes-run1/-run2`), `v6/` also with
`user-spend-limit` (v5's histories, which replay unchanged, and the runs of
`test_user_spend_limit`: pauses at the user's daily limit that the reset or a person lifts,
and the `fail` setting).

Recording a history when the workflow changes: a change that alters the commands a
workflow issues (an activity added, removed or reordered, a timer, a new wait) must keep
the old command order for running tasks behind `workflow.patched("<new-id>")`, and this
test proves it does by replaying the histories already recorded; never re-record those to
make it pass. Then keep the old folders, point `RECORDED_HISTORIES` in
`tests/workflows/conftest.py` at a new folder (`v4/`, ...), add a test that runs the new
path and calls the `record_history` fixture, and record the new set on the final code with
`AGENT_RECORD_HISTORIES=1 uv run pytest tests/workflows` (the time-skipping server makes
breakpoint timeouts instant). Commit the new folder with the change. Once no task that
started before a patch can still be running, the patch's old branch and the folders that
need it may be removed together (`workflow.deprecate_patch` first).
"""

from __future__ import annotations

import asyncio
import json
from base64 import b64decode
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from agent.temporal import data_converter
from agent.worker import workflow_runner
from tests.workflows.conftest import HISTORIES_DIR, RECORDED_HISTORIES
from workflows.task_workflow import (
    BREAKPOINT_TIMEOUT_PATCH,
    BUDGET_RESERVATION_PATCH,
    CONTINUE_AS_NEW_PATCH,
    START_TASK_LOCAL_PATCH,
    TOOLS_PATCH,
    USER_SPEND_PATCH,
    WAITING_ON_PATCH,
    TaskWorkflow,
)

HISTORY_FILES = sorted(HISTORIES_DIR.glob("*/*.json"))
MIN_HISTORIES_PER_VERSION = 10


def history_id(path: Path) -> str:
    """A history's test id: its folder and name, such as `v1/test_sequential_plan_completes`."""
    return f"{path.parent.name}/{path.stem}"


def patch_ids(path: Path) -> set[str]:
    """The `workflow.patched` ids whose markers a recorded history holds."""
    found: set[str] = set()
    for event in json.loads(path.read_text())["events"]:
        marker = event.get("markerRecordedEventAttributes")
        if marker is None or marker.get("markerName") != "core_patch":
            continue
        for payload in marker["details"]["patch-data"]["payloads"]:
            found.add(json.loads(b64decode(payload["data"]))["id"])
    return found


def test_histories_are_recorded() -> None:
    versions = {path.parent.name for path in HISTORY_FILES}
    assert {"v1", RECORDED_HISTORIES.name} <= versions
    for version in versions:
        assert len([p for p in HISTORY_FILES if p.parent.name == version]) >= (
            MIN_HISTORIES_PER_VERSION
        )


def test_current_histories_take_every_patched_branch() -> None:
    current = [p for p in HISTORY_FILES if p.parent == RECORDED_HISTORIES]
    seen = set().union(*(patch_ids(p) for p in current))
    assert {
        START_TASK_LOCAL_PATCH,
        BUDGET_RESERVATION_PATCH,
        BREAKPOINT_TIMEOUT_PATCH,
        WAITING_ON_PATCH,
        TOOLS_PATCH,
        CONTINUE_AS_NEW_PATCH,
        USER_SPEND_PATCH,
    } <= seen


@pytest.mark.parametrize("runner", ["default-sandbox", "worker-sandbox"])
@pytest.mark.parametrize("path", HISTORY_FILES, ids=history_id)
async def test_recorded_history_replays(path: Path, runner: str) -> None:
    # Arrange: under the SDK's default sandbox and under the worker's own runner (every
    # module passed through), so the worker's sandbox settings cannot change a decision.
    text = await asyncio.to_thread(path.read_text)
    history = WorkflowHistory.from_json(f"task-{path.stem}", text)
    sandbox = workflow_runner() if runner == "worker-sandbox" else SandboxedWorkflowRunner()
    replayer = Replayer(
        workflows=[TaskWorkflow], data_converter=data_converter, workflow_runner=sandbox
    )

    # Act
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    # Assert
    assert result.replay_failure is None, f"{history_id(path)}: {result.replay_failure}"
