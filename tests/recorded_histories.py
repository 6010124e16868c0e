"""Recorded histories of the side workflows, one folder per version of their code (`v1`, ...).

`AdmissionWorkflow` histories live in `histories/admission`, `RetentionWorkflow` histories in
`histories/retention`; `tests/workflows/test_side_workflow_replay.py` replays every one.
Record the current folders with `AGENT_RECORD_HISTORIES=1 uv run pytest
tests/api/test_quotas.py tests/workflows/test_retention_workflow.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

HISTORIES = Path(__file__).resolve().parent / "histories"
ADMISSION_HISTORIES = HISTORIES / "admission"
RECORDED_ADMISSION_HISTORIES = ADMISSION_HISTORIES / "v1"
RETENTION_HISTORIES = HISTORIES / "retention"
RECORDED_RETENTION_HISTORIES = RETENTION_HISTORIES / "v1"
RECORD_ENV = "AGENT_RECORD_HISTORIES"


async def record_history(handle: WorkflowHandle[Any, Any], folder: Path, name: str) -> None:
    """Write a finished workflow's history to `folder/<name>.json` when recording is on."""
    if os.environ.get(RECORD_ENV) != "1":
        return
    history = await handle.fetch_history()
    text = json.dumps(json.loads(history.to_json()), indent=1)
    await asyncio.to_thread(_write, folder / f"{name}.json", text)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
