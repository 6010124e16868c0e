"""The failure policy of `agent up`: which deaths of its children end the stack.

A server (PostgreSQL, Redis, Temporal, simulator) that dies takes the whole stack down,
since nothing useful runs without it. The worker and the API are stateless, so after the
stack was ready each may be restarted up to `MAX_RESTARTS` times (a crash loop still ends
the stack); any death during start-up fails the start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from agent.stack.supervisor import ManagedProcess

WATCH_INTERVAL_SECONDS = 0.25
MAX_RESTARTS = 3
RESTART_DELAY_SECONDS = 1.0
RESTARTABLE = frozenset({"worker", "api"})

Reporter = Callable[[str], None]


class EmbeddedServer(Protocol):
    """A server run in-process through a library (PostgreSQL, Redis), not a `ManagedProcess`."""

    @property
    def returncode(self) -> int | None:
        """Exit status once it died, else None."""

    @property
    def pid(self) -> int | None:
        """Its process id while it runs."""


class WatchedStack(Protocol):
    """What the watch needs of the stack."""

    @property
    def ready(self) -> bool:
        """Whether the stack became ready (restarts are allowed only then)."""

    def managed_processes(self) -> list[ManagedProcess]:
        """The children run as processes (apps first)."""

    def embedded_servers(self) -> dict[str, EmbeddedServer]:
        """The embedded servers, by name."""

    def children_changed(self) -> None:
        """Record the children's new pids (after a restart)."""


async def first_failure(stack: WatchedStack, report: Reporter) -> str:
    """Watch the children, restart what may be restarted, until one death is final.

    Args:
        stack: The running stack.
        report: Where lines for a person go.

    Returns:
        A description of the first unrecoverable death, meant for a person.
    """
    restarts: dict[str, int] = {}
    while True:
        await asyncio.sleep(WATCH_INTERVAL_SECONDS)
        for process in stack.managed_processes():
            code = process.returncode
            if code is None or process.stopping:
                continue
            count = restarts.get(process.name, 0)
            if stack.ready and process.name in RESTARTABLE and count < MAX_RESTARTS:
                restarts[process.name] = count + 1
                report(
                    f"{process.name} exited with status {code}; restarting "
                    f"({count + 1}/{MAX_RESTARTS}), log: {process.log_path}"
                )
                await asyncio.sleep(RESTART_DELAY_SECONDS)
                try:
                    await process.start()
                except OSError as exc:
                    return f"{process.name} could not be restarted: {exc}"
                stack.children_changed()
                continue
            return (
                f"{process.name} exited unexpectedly with status {code}; "
                f"last lines of {process.log_path}:\n{process.log_tail()}"
            )
        for name, server in stack.embedded_servers().items():
            if server.returncode is not None:
                return f"{name} exited unexpectedly with status {server.returncode}"
