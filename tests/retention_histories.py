"""Recorded histories of `RetentionWorkflow`, one folder per version of its code (`v1`, ...).

`tests/workflows/test_retention_replay.py` replays every one; record the current folder with
`AGENT_RECORD_HISTORIES=1 uv run pytest tests/workflows/test_retention_workflow.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

RETENTION_HISTORIES = Path(__file__).resolve().parent / "histories" / "retention"
RECORDED_RETENTION_HISTORIES = RETENTION_HISTORIES / "v1"
RECORD_ENV = "AGENT_RECORD_HISTORIES"


async def record_retention_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Write a finished retention workflow's history when recording is on."""
    if os.environ.get(RECORD_ENV) != "1":
        return
    history = await handle.fetch_history()
    RECORDED_RETENTION_HISTORIES.mkdir(parents=True, exist_ok=True)
    path = RECORDED_RETENTION_HISTORIES / f"{name}.json"
    path.write_text(json.dumps(json.loads(history.to_json()), indent=1))
