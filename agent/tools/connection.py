"""One MCP server's client session for any task of the process, restarted after a failure.

A session whose transport ended (a crashed stdio server, a dropped HTTP connection) is
replaced by a new one on the next request, which for a stdio server starts a new process.
Each session is owned by a task of its own (session.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import httpx2
import structlog
from mcp import Client, MCPError
from mcp.types import CONNECTION_CLOSED, CallToolResult, Tool

from agent.tools.config import ServerConfig
from agent.tools.errors import ToolCallLostError, ToolCallTimeoutError, ToolServerUnavailable
from agent.tools.session import OwnedSession, describe

CONNECT_TIMEOUT_SECONDS = 30.0
"""Starting a server (or reaching it) and the protocol handshake."""
LIST_TIMEOUT_SECONDS = 30.0
"""Listing a server's tools (all pages)."""
SETTLE_TIMEOUT_SECONDS = 5.0
"""How long a failed request waits for its session to end, to learn why it failed."""

log = structlog.get_logger(__name__)


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
        self._session: OwnedSession | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def connected(self) -> bool:
        """Whether a session is open and its transport has not hung up, as noticed so far.

        A stdio server that exits is noticed when its output ends; the next request then
        starts a new one.
        """
        return self._session is not None and self._session.alive

    async def _open(self) -> OwnedSession:
        async with self._lock:
            if self._closed:
                raise ToolServerUnavailable(self.server, "the tool layer is closed")
            if self._session is not None and self._session.alive:
                return self._session
            if self._session is not None:
                await self._session.close()
                log.info("mcp_session_restart", server=self.server)
            session = OwnedSession(self.server, self._config, self._connect_timeout)
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


def _client(session: OwnedSession) -> Client:
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
