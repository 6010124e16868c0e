import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.stack.lock import DataDirInUseError, DataDirLock


def test_second_lock_on_same_dir_is_refused_with_holder_pid(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(DataDirInUseError) as refused:
            DataDirLock(tmp_path).acquire()
    finally:
        first.release()

    assert refused.value.pid == os.getpid()
    assert str(refused.value) == (
        f"data dir {tmp_path} is in use by another `agent up` (pid {os.getpid()})"
    )


def test_released_lock_can_be_taken_again(tmp_path: Path) -> None:
    with DataDirLock(tmp_path):
        pass

    second = DataDirLock(tmp_path)
    second.acquire()

    assert second.held
    second.release()


def test_lock_of_a_killed_holder_is_released_by_the_kernel(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from agent.stack.lock import DataDirLock
                lock = DataDirLock(Path({str(tmp_path)!r}))
                lock.acquire()
                print("locked", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DataDirInUseError) as refused:
            DataDirLock(tmp_path).acquire()
        assert refused.value.pid == holder.pid
    finally:
        holder.kill()
        holder.wait()

    lock = DataDirLock(tmp_path)
    lock.acquire()

    assert lock.held
    lock.release()
