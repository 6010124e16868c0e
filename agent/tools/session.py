"""An MCP session entered and exited by a task of its own.

The SDK's transports (`stdio_client`, `streamable_http_client`) are anyio context managers
that must be entered and exited in the same task, and a transport that fails cancels the
task that entered it. So `OwnedSession` runs each session in its own task, which enters the
client, waits until it is told to stop or the transport ends, and exits it; callers in other
tasks only send requests on the open client. `McpConnection` (connection.py) replaces a
session that ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import anyio
import structlog
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from agent.tools.config import HttpServer, ServerConfig
from agent.tools.errors import ToolServerUnavailable

CLOSE_TIMEOUT_SECONDS = 10.0
"""Stopping a session; the stdio transport itself escalates to a kill within about 6 s."""

log = structlog.get_logger(__name__)

T = TypeVar("T")


class _EndWatchingStream(Generic[T]):
    """The transport's read stream, telling its session when the server hung up."""

    def __init__(self, stream: Any, on_end: asyncio.Event) -> None:
        self._stream = stream
        self._on_end = on_end

    @property
    def last_context(self) -> Any:
        # The streamable HTTP transport's streams carry the sender's context per message.
        return getattr(self._stream, "last_context", None)

    async def receive(self) -> T:
        try:
            item: T = await self._stream.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_end.set()
            raise
        return item

    async def aclose(self) -> None:
        await self._stream.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()


@asynccontextmanager
async def _transport(config: ServerConfig, ended: asyncio.Event) -> AsyncIterator[Any]:
    """Open the server's transport; its read stream sets `ended` when the server hangs up."""
    async with AsyncExitStack() as stack:
        if isinstance(config, HttpServer):
            http = await stack.enter_async_context(
                create_mcp_http_client(headers=dict(config.headers) or None)
            )
            opened = streamable_http_client(config.url, http_client=http)
        else:
            parameters = StdioServerParameters(
                command=config.command,
                args=list(config.args),
                env=dict(config.env) or None,
                cwd=config.cwd,
            )
            opened = stdio_client(parameters)
        read, write = await stack.enter_async_context(opened)
        yield _EndWatchingStream[Any](read, ended), write


class OwnedSession:
    """One open MCP session and the task that owns it."""

    def __init__(self, server: str, config: ServerConfig, connect_timeout: float) -> None:
        self.server = server
        self._config = config
        self._connect_timeout = connect_timeout
        self.client: Client | None = None
        self.failure: BaseException | None = None
        """Why the session ended, when it ended on its own."""
        self._transport_ended = asyncio.Event()
        self._stop = asyncio.Event()
        self._ended = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        """Open and its transport still connected, as far as anyone has noticed."""
        return (
            self.client is not None
            and not self._ended.is_set()
            and not (self._transport_ended.is_set())
        )

    async def start(self) -> Client:
        """Open the session in its own task and wait until it is usable.

        Raises:
            ToolServerUnavailable: The server did not start, answer or complete the handshake.
        """
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._own(ready), name=f"mcp-session-{self.server}")
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await asyncio.shield(ready)
        except TimeoutError as error:
            await self._cancel()
            raise ToolServerUnavailable(
                self.server, f"not ready within {self._connect_timeout:g} seconds"
            ) from error
        except asyncio.CancelledError:
            await self._cancel()
            raise

    async def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _own(self, ready: asyncio.Future[Client]) -> None:
        try:
            async with AsyncExitStack() as stack:
                # No cancel scope around this: the client's task groups must stay open past
                # it. `start` bounds the wait and cancels this task instead.
                client = await stack.enter_async_context(
                    Client(_transport(self._config, self._transport_ended), cache=None)
                )
                self.client = client
                ready.set_result(client)
                stop = asyncio.create_task(self._stop.wait())
                hung_up = asyncio.create_task(self._transport_ended.wait())
                try:
                    await asyncio.wait({stop, hung_up}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stop.cancel()
                    hung_up.cancel()
                if self._transport_ended.is_set() and not self._stop.is_set():
                    log.warning("mcp_server_hung_up", server=self.server)
        except (Exception, asyncio.CancelledError) as error:
            # A failing transport cancels this task (the task that entered it) and raises
            # its error from the exit: either way the session is over.
            self.failure = error
            if not ready.done():
                ready.set_exception(ToolServerUnavailable(self.server, describe(error)))
            elif not self._stop.is_set():
                log.warning("mcp_session_failed", server=self.server, error=describe(error))
        finally:
            self.client = None
            self._ended.set()

    def stop(self) -> None:
        """Ask the owning task to close the session (and stop a stdio server)."""
        self._stop.set()

    async def wait_ended(self, seconds: float) -> bool:
        """Wait up to `seconds` for the session to end; whether it did."""
        try:
            async with asyncio.timeout(seconds):
                await self._ended.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop the session and wait for it; cancel its task if it does not stop in time."""
        self.stop()
        if self._task is None:
            return
        if not await self.wait_ended(CLOSE_TIMEOUT_SECONDS):
            await self._cancel()


def describe(error: BaseException | None) -> str:
    """One line for an error, unwrapping the exception groups a transport raises."""
    if error is None:
        return "the session ended"
    if isinstance(error, BaseExceptionGroup) and error.exceptions:
        return describe(error.exceptions[0])
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, asyncio.CancelledError):
        return "the session was cancelled (its transport failed)"
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"
