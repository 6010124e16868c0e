"""Start and stop `counting_server.py` as a subprocess from an async test."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

LISTENING_PREFIX = "listening "


@dataclass
class CountingServer:
    """A running counting server over streamable HTTP."""

    process: asyncio.subprocess.Process
    url: str
    port: int
    state: Path

    async def kill(self) -> None:
        """SIGKILL the server and reap it."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


async def start_counting_server(state: Path, port: int = 0) -> CountingServer:
    """Start the server on loopback (`port` 0 = a free one) and wait until it listens.

    Args:
        state: The file its counters persist in (kept across restarts).
        port: The port; pass a killed server's port to bring the same URL back.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.tool_servers.counting_server",
        "--state",
        str(state),
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    while True:
        line = (await process.stdout.readline()).decode()
        assert line, f"counting server exited before listening (code {await process.wait()})"
        if line.startswith(LISTENING_PREFIX):
            url = line.removeprefix(LISTENING_PREFIX).strip()
            return CountingServer(process, url, int(url.split(":")[2].split("/")[0]), state)


def stdio_command(state: Path) -> list[str]:
    """The command line running the counting server over stdio (for a `command` entry)."""
    return [
        sys.executable,
        "-m",
        "tests.tool_servers.counting_server",
        "--state",
        str(state),
        "--transport",
        "stdio",
    ]
