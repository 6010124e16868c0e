"""Child processes of `agent up`: started in their own process groups, stopped as a group."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil
import structlog

logger = structlog.get_logger(__name__)

STOP_TIMEOUT_SECONDS = 4.0
KILL_WAIT_SECONDS = 1.0
LOG_TAIL_BYTES = 4000
CHILDREN_FILE_NAME = "children.json"


class ManagedProcess:
    """One child process whose output goes to a log file.

    It runs in a new session (its own process group), so a terminal's Ctrl-C reaches only
    `agent up`, which then stops children in order, and a stop signals the child's whole
    group (a server and whatever it spawned).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        """Describe the child; nothing starts until `start()`.

        Args:
            name: Short name used in logs and messages ("worker", "api", ...).
            argv: Program and arguments.
            log_path: File receiving the child's stdout and stderr (appended).
            env: Full environment of the child; the parent's when None.
            stop_signal: Signal asking the child to shut down gracefully.
        """
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.stop_signal = stop_signal
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        """PID of the child, once started."""
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit status, once the child has exited."""
        return self._process.returncode if self._process is not None else None

    @property
    def stopping(self) -> bool:
        """Whether `stop()` was called (an exit is then expected)."""
        return self._stopping

    async def start(self) -> None:
        """Start the child."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        logger.info("child_started", child=self.name, pid=self._process.pid)

    async def wait(self) -> int:
        """Wait for the child to exit and return its status."""
        if self._process is None:
            raise RuntimeError(f"{self.name} was never started")
        return await self._process.wait()

    def _signal_group(self, sig: signal.Signals) -> None:
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # The child leads its own session, so its pid is its process group id.
            os.killpg(process.pid, sig)

    async def stop(self, grace_seconds: float = STOP_TIMEOUT_SECONDS) -> None:
        """Ask the child's group to stop; kill it if it has not exited in `grace_seconds`."""
        self._stopping = True
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            self._signal_group(self.stop_signal)
            try:
                await asyncio.wait_for(process.wait(), grace_seconds)
            except TimeoutError:
                logger.warning(
                    "child_killed", child=self.name, pid=process.pid, after_s=grace_seconds
                )
                self._signal_group(signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), KILL_WAIT_SECONDS)
        # Grandchildren left in the group (the child exited first) go too.
        self._signal_group(signal.SIGKILL)
        logger.info("child_stopped", child=self.name, pid=process.pid, status=process.returncode)

    def log_tail(self, size: int = LOG_TAIL_BYTES) -> str:
        """The end of the child's log, for error messages."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - size))
                return handle.read().decode(errors="replace")
        except OSError:
            return ""


def record_children(data_dir: Path, pids: Mapping[str, int]) -> None:
    """Remember the running children (pid and start time) in `DIR/children.json`.

    A later `agent up` on the same directory uses it to stop processes a killed
    predecessor left behind (see `reap_leftovers`).
    """
    entries: dict[str, dict[str, float | int]] = {}
    for name, pid in pids.items():
        with contextlib.suppress(psutil.Error):
            entries[name] = {"pid": pid, "create_time": psutil.Process(pid).create_time()}
    path = data_dir / CHILDREN_FILE_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries))
    tmp.replace(path)


def clear_children(data_dir: Path) -> None:
    """Forget the recorded children (after a clean stop)."""
    (data_dir / CHILDREN_FILE_NAME).unlink(missing_ok=True)


def reap_leftovers(data_dir: Path, timeout: float = STOP_TIMEOUT_SECONDS) -> list[str]:
    """Stop processes recorded by an `agent up` that died without cleaning up.

    Only processes whose pid *and* start time still match are touched, so a recycled pid
    is never signalled. Call it while holding the data dir lock.

    Returns:
        Names of the processes that were stopped.
    """
    path = data_dir / CHILDREN_FILE_NAME
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    alive: dict[str, psutil.Process] = {}
    for name, entry in entries.items():
        try:
            process = psutil.Process(int(entry["pid"]))
            if abs(process.create_time() - float(entry["create_time"])) < 1e-3:
                alive[name] = process
        except (psutil.Error, KeyError, TypeError, ValueError):
            continue
    for name, process in alive.items():
        logger.warning("reaping_leftover_process", child=name, pid=process.pid)
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, still = psutil.wait_procs(list(alive.values()), timeout=timeout)
    for process in still:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(still, timeout=KILL_WAIT_SECONDS)
    path.unlink(missing_ok=True)
    return list(alive)
