"""Recorded histories of `AdmissionWorkflow`, one folder per version of its code (`v1`, ...).

`tests/workflows/test_admission_replay.py` replays every one; record the current folder with
`AGENT_RECORD_HISTORIES=1 uv run pytest tests/api/test_quotas.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

ADMISSION_HISTORIES = Path(__file__).resolve().parent / "histories" / "admission"
RECORDED_ADMISSION_HISTORIES = ADMISSION_HISTORIES / "v1"
RECORD_ENV = "AGENT_RECORD_HISTORIES"


async def record_admission_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Write a finished admission workflow's history when recording is on."""
    if os.environ.get(RECORD_ENV) != "1":
        return
    history = await handle.fetch_history()
    RECORDED_ADMISSION_HISTORIES.mkdir(parents=True, exist_ok=True)
    path = RECORDED_ADMISSION_HISTORIES / f"{name}.json"
    path.write_text(json.dumps(json.loads(history.to_json()), indent=1))
