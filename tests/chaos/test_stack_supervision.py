"""`agent up` supervision under chaos: a SIGKILLed worker is restarted, the stack stays up.

Run by `agent chaos` (and CI) with the rest of the chaos suite; the `agent up` process
driver is shared with `tests/agent/stack/test_up_e2e.py`.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from agent.stack.info import StackInfo
from agent.stack.ports import free_port
from tests.agent.stack.test_up_e2e import READY_TIMEOUT_SECONDS, Up


@pytest.mark.chaos
def test_killed_worker_is_restarted_and_stack_stays_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    up = Up(data_dir, free_port(), free_port(), free_port())
    try:
        info = up.wait_ready()
        os.kill(info.processes["worker"], signal.SIGKILL)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        restarted = info
        while restarted.processes["worker"] == info.processes["worker"]:
            assert time.monotonic() < deadline, up.text()
            assert up.process.poll() is None, up.text()
            time.sleep(0.2)
            restarted = StackInfo.read(data_dir) or restarted
        ready = httpx.get(f"{info.api_url}/readyz", timeout=10)
        status = up.terminate()
    finally:
        up.kill_group()

    assert ready.status_code == 200
    assert restarted.processes["temporal"] == info.processes["temporal"]
    assert "worker exited with status -9; restarting (1/3)" in up.text()
    assert status == 0
