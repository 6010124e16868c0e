import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from agent.stack.supervisor import (
    CHILDREN_FILE_NAME,
    ManagedProcess,
    reap_leftovers,
    record_children,
)

GRANDCHILD_EXIT_POLLS = 100


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


async def test_stop_signals_the_whole_process_group(tmp_path: Path) -> None:
    process = ManagedProcess(
        "shell",
        ["sh", "-c", f"sleep 300 & echo $! > {tmp_path / 'grandchild'}; wait"],
        log_path=tmp_path / "shell.log",
    )
    await process.start()
    for _ in range(100):
        if (tmp_path / "grandchild").exists() and (tmp_path / "grandchild").read_text():
            break
        await asyncio.sleep(0.02)
    grandchild = int((tmp_path / "grandchild").read_text())

    await process.stop(grace_seconds=2.0)

    assert process.returncode is not None
    assert process.stopping
    # The grandchild got its SIGTERM with the group but is nobody's child to wait for:
    # on a busy machine it may still be exiting when `stop` returns.
    for _ in range(GRANDCHILD_EXIT_POLLS):
        if _gone(grandchild):
            break
        await asyncio.sleep(0.05)
    assert _gone(grandchild)


async def test_child_ignoring_sigterm_is_killed_after_grace(tmp_path: Path) -> None:
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    script += "print('up', flush=True); time.sleep(300)"
    process = ManagedProcess(
        "stubborn", [sys.executable, "-c", script], log_path=tmp_path / "stubborn.log"
    )
    await process.start()
    for _ in range(200):
        if "up" in process.log_tail():
            break
        await asyncio.sleep(0.02)

    await process.stop(grace_seconds=0.5)

    assert process.returncode == -signal.SIGKILL


async def test_log_tail_holds_child_output(tmp_path: Path) -> None:
    process = ManagedProcess("echo", ["echo", "hello from child"], log_path=tmp_path / "e.log")
    await process.start()

    await process.wait()

    assert "hello from child" in process.log_tail()


def test_reap_leftovers_stops_recorded_processes(tmp_path: Path) -> None:
    orphan = subprocess.Popen(["sleep", "300"])
    record_children(tmp_path, {"worker": orphan.pid})

    reaped = reap_leftovers(tmp_path, timeout=2.0)

    assert reaped == ["worker"]
    orphan.wait(timeout=5)
    assert _gone(orphan.pid)
    assert not (tmp_path / CHILDREN_FILE_NAME).exists()


def test_reap_leftovers_spares_a_recycled_pid(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        entry = {"pid": bystander.pid, "create_time": psutil.Process(bystander.pid).create_time()}
        entry["create_time"] -= 100.0
        (tmp_path / CHILDREN_FILE_NAME).write_text(json.dumps({"worker": entry}))

        reaped = reap_leftovers(tmp_path, timeout=1.0)

        assert reaped == []
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
