"""`agent up` refusals that happen before anything starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from agent.stack.lock import DataDirLock
from agent.stack.ports import free_port


def _up(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")}
    return subprocess.run(
        [sys.executable, "-c", "from agent.cli.main import main; main()", "up", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )


def test_up_on_a_held_data_dir_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    with DataDirLock(data_dir):
        result = _up("--data-dir", str(data_dir), "--api-port", str(free_port()), cwd=tmp_path)

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: data dir {data_dir} is in use by another `agent up` (pid {os.getpid()})"
    )
    assert not (data_dir / "postgres").exists()


def test_up_with_a_busy_api_port_names_the_flag_and_starts_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = _up(
            "--data-dir",
            str(data_dir),
            "--api-port",
            str(port),
            "--temporal-port",
            str(free_port()),
            "--ui-port",
            str(free_port()),
            cwd=tmp_path,
        )

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: port {port} (API) is already in use; free it or choose another with --api-port"
    )
    assert not (data_dir / "postgres").exists()
    assert not (data_dir / "agent.lock").read_text()
