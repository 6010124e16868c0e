"""Bounded polling for tests that wait on another process (a worker, a server, a socket).

The bound is not a time limit on the test: it turns a condition that is never reached
into a clear assertion failure instead of a hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

POLL_SECONDS = 0.05
WAIT_LIMIT_SECONDS = 120.0


async def wait_until(check: Callable[[], Awaitable[bool]], what: str = "condition") -> None:
    """Poll `check` until it returns true.

    Args:
        check: Coroutine function answering whether the condition holds.
        what: Named in the assertion message when the condition is never reached.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_LIMIT_SECONDS
    while not await check():
        assert loop.time() < deadline, f"{what} not reached"
        await asyncio.sleep(POLL_SECONDS)
