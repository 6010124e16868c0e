"""An exclusive lock on a data directory, so two `agent up` never share one."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import IO

LOCK_FILE_NAME = "agent.lock"


class DataDirInUseError(RuntimeError):
    """Another process holds the data directory's lock."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"data dir {data_dir} is in use by another `agent up` ({holder})")
        self.data_dir = data_dir
        self.pid = pid


class DataDirLock:
    """`fcntl.flock` on `DIR/agent.lock`, holding the owner's pid.

    The kernel releases the lock when the holder exits, however it exits, so a crashed
    `agent up` never leaves the directory locked.
    """

    def __init__(self, data_dir: Path) -> None:
        """Describe the lock; nothing is taken until `acquire()`.

        Args:
            data_dir: The directory to lock (created when missing).
        """
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE_NAME
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._file is not None

    def acquire(self) -> None:
        """Take the lock without waiting.

        Raises:
            DataDirInUseError: When another process holds it.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            content = handle.read().strip()
            handle.close()
            holder = int(content) if content.isdigit() else None
            raise DataDirInUseError(self.data_dir, holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        handle = self._file
        if handle is None:
            return
        self._file = None
        handle.seek(0)
        handle.truncate()
        handle.flush()
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
