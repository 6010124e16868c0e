"""One MCP server's client session, owned by a dedicated task and restarted after a failure.

The SDK's transports (`stdio_client`, `streamable_http_client`) are anyio context managers
that must be entered and exited in the same task, and a transport that fails cancels the
task that entered it. So each session lives in a task of its own (`_Session._own`) that
enters the client, waits until it is told to stop or the transport ends, and exits it;
callers in any other task (activities, API requests) send their requests on the open
session and never enter or exit anything. A session whose transport ended (a crashed stdio
server, a dropped HTTP connection) is replaced by a new one on the next request, which for
a stdio server starts a new process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import anyio
import httpx2
import structlog
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import CONNECTION_CLOSED, CallToolResult, Tool

from agent.tools.config import HttpServer, ServerConfig
from agent.tools.errors import ToolCallLostError, ToolCallTimeoutError, ToolServerUnavailable

CONNECT_TIMEOUT_SECONDS = 30.0
"""Starting a server (or reaching it) and the protocol handshake."""
LIST_TIMEOUT_SECONDS = 30.0
"""Listing a server's tools (all pages)."""
CLOSE_TIMEOUT_SECONDS = 10.0
"""Stopping a session; the stdio transport itself escalates to a kill within about 6 s."""
SETTLE_TIMEOUT_SECONDS = 5.0
"""How long a failed request waits for its session to end, to learn why it failed."""

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


class _Session:
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


class McpConnection:
    """A server's session for any task of the process.

    Opened on first use and reopened after a failure; several requests may be in flight on
    it at once.

    Args:
        server: The server's name in the configuration (named in errors and logs).
        config: How to reach it.
        connect_timeout: Seconds for starting or reaching it and the handshake.
    """

    def __init__(
        self,
        server: str,
        config: ServerConfig,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        self.server = server
        self._config = config
        self._connect_timeout = connect_timeout
        self._session: _Session | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def connected(self) -> bool:
        """Whether a session is open and its transport has not hung up, as noticed so far.

        A stdio server that exits is noticed when its output ends; the next request then
        starts a new one.
        """
        return self._session is not None and self._session.alive

    async def _open(self) -> _Session:
        async with self._lock:
            if self._closed:
                raise ToolServerUnavailable(self.server, "the tool layer is closed")
            if self._session is not None and self._session.alive:
                return self._session
            if self._session is not None:
                await self._session.close()
                log.info("mcp_session_restart", server=self.server)
            session = _Session(self.server, self._config, self._connect_timeout)
            self._session = None
            await session.start()
            self._session = session
            return session

    async def list_tools(self) -> list[Tool]:
        """Every tool the server lists (all pages), asked afresh.

        Raises:
            ToolServerUnavailable: The server cannot be started, reached or did not answer.
        """
        session = await self._open()
        client = _client(session)
        tools: list[Tool] = []
        cursor: str | None = None
        try:
            async with asyncio.timeout(LIST_TIMEOUT_SECONDS):
                while True:
                    page = await client.list_tools(cursor=cursor, cache_mode="refresh")
                    tools.extend(page.tools)
                    cursor = page.next_cursor
                    if cursor is None:
                        return tools
        except TimeoutError as error:
            session.stop()
            raise ToolServerUnavailable(
                self.server, f"tools/list did not answer within {LIST_TIMEOUT_SECONDS:g} seconds"
            ) from error
        except _REQUEST_ERRORS as error:
            if _is_protocol_error(error):
                raise ToolServerUnavailable(self.server, f"tools/list failed: {error}") from error
            session.stop()
            raise ToolServerUnavailable(self.server, describe(error)) from error

    async def call_tool(
        self, tool: str, arguments: dict[str, Any], timeout_seconds: float
    ) -> CallToolResult:
        """Call `tool` with `arguments`, waiting at most `timeout_seconds` for its answer.

        Returns:
            The server's result, `is_error` included.

        Raises:
            ToolServerUnavailable: The server could not be started or reached; the call was
                not made.
            ToolCallTimeoutError: No answer in time; the request was cancelled, the tool may
                have run.
            ToolCallLostError: The connection broke during the call; the tool may have run. The
                next request opens a new session.
            MCPError: The server refused the request (a JSON-RPC error other than a closed
                connection).
        """
        session = await self._open()
        client = _client(session)
        try:
            async with asyncio.timeout(timeout_seconds):
                return await client.call_tool(tool, arguments)
        except TimeoutError as error:
            raise ToolCallTimeoutError(self.server, tool, timeout_seconds) from error
        except _REQUEST_ERRORS as error:
            if _is_protocol_error(error):
                raise
            session.stop()
            await session.wait_ended(SETTLE_TIMEOUT_SECONDS)
            if session.failure is not None and _never_connected(session.failure):
                raise ToolServerUnavailable(self.server, describe(session.failure)) from error
            raise ToolCallLostError(
                self.server, tool, f"the connection to the server broke: {describe(error)}"
            ) from error

    async def aclose(self) -> None:
        """Close the session (stopping a stdio server); later requests fail."""
        async with self._lock:
            self._closed = True
            if self._session is not None:
                await self._session.close()
                self._session = None


_REQUEST_ERRORS: tuple[type[Exception], ...] = (
    MCPError,
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
    OSError,
    httpx2.TransportError,
)


def _client(session: _Session) -> Client:
    client = session.client
    if client is None:
        # Ended between opening and this line: as if it broke before the request was sent.
        raise ToolServerUnavailable(session.server, describe(session.failure))
    return client


def _is_protocol_error(error: BaseException) -> bool:
    """A JSON-RPC error the server answered with, as opposed to a broken connection."""
    return isinstance(error, MCPError) and error.code != CONNECTION_CLOSED


def _never_connected(error: BaseException) -> bool:
    """Whether the session ended only because the server could not be reached at all.

    Every error in a group must say so: one broken response among them (another request's,
    perhaps, or this one's) means a request may have reached the server.
    """
    if isinstance(error, BaseExceptionGroup):
        return all(_never_connected(inner) for inner in error.exceptions)
    if isinstance(error, httpx2.ConnectError | ConnectionRefusedError):
        return True
    cause = error.__cause__
    return cause is not None and _never_connected(cause)


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
