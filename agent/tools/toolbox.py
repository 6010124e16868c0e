"""The toolbox: every configured MCP server's tools, under each server's policy.

One `Toolbox` per process (the worker's and the API's lifespans create it and close it);
it keeps one `McpConnection` per server, opened on first use.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import structlog
from mcp import MCPError
from mcp.types import Tool

from agent.config import Settings
from agent.contract.tools import ToolSpec, function_name
from agent.tools.config import ServerConfig, ToolsConfig, load_tools_config
from agent.tools.connection import McpConnection
from agent.tools.errors import UnknownToolError
from agent.tools.results import ToolOutput, to_output

FUNCTION_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""What OpenAI accepts as a function name; a tool whose `server__tool` is not one is left out."""

log = structlog.get_logger(__name__)


class Toolbox:
    """The tools of every configured MCP server, as the policies allow them.

    Args:
        config: The servers and their policies.
    """

    def __init__(self, config: ToolsConfig) -> None:
        self._config = config
        self._connections = {
            name: McpConnection(name, server) for name, server in config.servers.items()
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> Toolbox:
        """A toolbox for the servers of `AGENT_MCP_SERVERS` / `AGENT_MCP_CONFIG`.

        Raises:
            ToolsConfigError: The configuration is invalid.
        """
        return cls(load_tools_config(settings))

    @property
    def servers(self) -> list[str]:
        """The configured servers' names, in the configuration's order."""
        return list(self._config.servers)

    def connected(self, server: str) -> bool:
        """Whether `server`'s session is open (false before first use and after a hang-up)."""
        connection = self._connections.get(server)
        return connection is not None and connection.connected

    async def list_tools(self, server: str) -> list[ToolSpec]:
        """The tools of `server` a task may call, with the policy's approval, retry and timeout.

        Raises:
            UnknownToolError: No such server is configured.
            ToolServerUnavailable: The server cannot be started or reached, or did not answer.
        """
        policy = self._server(server, entry=server)
        listed = await self._connections[server].list_tools()
        _warn_about_unlisted_policy_names(server, policy, listed)
        return [
            _spec(server, policy, tool)
            for tool in listed
            if policy.permits(tool.name) and _has_valid_function_name(server, tool.name)
        ]

    async def resolve(self, requested: Sequence[str] | None) -> list[ToolSpec]:
        """The tools a task asked for, read from their servers now (to be pinned).

        Args:
            requested: Server names (every allowed tool of that server) or `server.tool`
                entries; None = every allowed tool of every server.

        Returns:
            The tools, each once, in the order requested (servers in configuration order).

        Raises:
            UnknownToolError: An entry names a server that is not configured, or a tool the
                server does not list or its policy does not allow.
            ToolServerUnavailable: A server needed cannot be started or reached.
        """
        entries = list(self._config.servers) if requested is None else list(requested)
        wanted: list[tuple[str, str, str | None]] = []
        for entry in entries:
            server, _, name = entry.strip().partition(".")
            self._server(server, entry=entry)
            wanted.append((entry, server, name or None))
        servers = list(dict.fromkeys(item[1] for item in wanted))
        listings = await asyncio.gather(
            *(self._connections[server].list_tools() for server in servers),
            return_exceptions=True,
        )
        listed: dict[str, list[Tool]] = {}
        for server, listing in zip(servers, listings, strict=True):
            if isinstance(listing, BaseException):
                raise listing
            listed[server] = listing
        specs: dict[str, ToolSpec] = {}
        for entry, server, tool in wanted:
            for spec in self._select(entry, server, tool, listed[server]):
                specs.setdefault(spec.qualified_name, spec)
        return list(specs.values())

    async def call(self, spec: ToolSpec, arguments: dict[str, Any]) -> ToolOutput:
        """Call a pinned tool with arguments already checked against its schema.

        A tool's own failure and a server's refusal come back as an error result (for the
        model); only failures that leave the outcome unknown are raised.

        Raises:
            UnknownToolError: The server is no longer configured, or its policy no longer
                allows the tool (nothing is called).
            ToolServerUnavailable: The server could not be started or reached (the tool did
                not run).
            ToolCallTimeoutError: No answer within the tool's timeout (it may have run).
            ToolCallLostError: The server crashed or the connection broke during the call (it may
                have run).
        """
        policy = self._server(spec.server, entry=spec.qualified_name)
        if not policy.permits(spec.name):
            raise UnknownToolError(
                spec.qualified_name, f"the policy of MCP server {spec.server!r} denies it"
            )
        started = time.monotonic()
        try:
            result = await self._connections[spec.server].call_tool(
                spec.name, arguments, spec.timeout_seconds
            )
        except MCPError as error:
            output = ToolOutput(
                content=f"{spec.qualified_name} was refused by its server: {error.message} "
                f"(MCP error {error.code})",
                is_error=True,
            )
        else:
            output = to_output(result)
        log.info(
            "tool_called",
            tool=spec.qualified_name,
            is_error=output.is_error,
            chars=len(output.content),
            seconds=round(time.monotonic() - started, 3),
        )
        return output

    async def aclose(self) -> None:
        """Close every session (stopping the stdio servers)."""
        await asyncio.gather(*(connection.aclose() for connection in self._connections.values()))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _server(self, server: str, *, entry: str) -> ServerConfig:
        config = self._config.servers.get(server)
        if config is None:
            configured = ", ".join(self._config.servers) or "none"
            raise UnknownToolError(
                entry, f"no MCP server {server!r} is configured (configured: {configured})"
            )
        return config

    def _select(
        self, entry: str, server: str, tool: str | None, listed: list[Tool]
    ) -> list[ToolSpec]:
        policy = self._config.servers[server]
        if tool is None:
            return [
                _spec(server, policy, item)
                for item in listed
                if policy.permits(item.name) and _has_valid_function_name(server, item.name)
            ]
        found = next((item for item in listed if item.name == tool), None)
        if found is None:
            names = ", ".join(item.name for item in listed) or "none"
            raise UnknownToolError(
                entry, f"MCP server {server!r} has no tool {tool!r} (it lists: {names})"
            )
        if not policy.permits(tool):
            raise UnknownToolError(entry, f"the policy of MCP server {server!r} denies it")
        if not FUNCTION_NAME_PATTERN.match(function_name(server, tool)):
            raise UnknownToolError(entry, _bad_function_name(server, tool))
        return [_spec(server, policy, found)]


def _spec(server: str, policy: ServerConfig, tool: Tool) -> ToolSpec:
    return ToolSpec(
        server=server,
        name=tool.name,
        description=tool.description or "",
        input_schema=tool.input_schema,
        needs_approval=tool.name in policy.approve,
        retry=policy.retry,
        timeout_seconds=policy.timeout_seconds,
    )


def _has_valid_function_name(server: str, tool: str) -> bool:
    if FUNCTION_NAME_PATTERN.match(function_name(server, tool)):
        return True
    log.warning(
        "mcp_tool_skipped", server=server, tool=tool, reason=_bad_function_name(server, tool)
    )
    return False


def _bad_function_name(server: str, tool: str) -> str:
    return (
        f"its function name {function_name(server, tool)!r} is not one a model accepts "
        "(letters, digits, '_' and '-', at most 64)"
    )


def _warn_about_unlisted_policy_names(
    server: str, policy: ServerConfig, listed: list[Tool]
) -> None:
    """A policy naming a tool the server does not list is likely a typo; say so."""
    names = {tool.name for tool in listed}
    named = set(policy.allow or ()) | set(policy.approve) | set(policy.deny)
    unknown = sorted(named - names)
    if unknown:
        log.warning("mcp_policy_names_unknown_tools", server=server, tools=unknown)
