"""MCP servers and their policies, in the format MCP clients use everywhere.

```json
{"mcpServers": {
  "time": {"command": "mcp-server-time", "args": [], "env": {}, "retry": "safe"},
  "docs": {"url": "http://127.0.0.1:9000/mcp", "headers": {}, "approve": ["write_page"]}
}}
```

Read from `AGENT_MCP_SERVERS` (the JSON text) or `AGENT_MCP_CONFIG` (a file holding it).
Next to `command`/`url`, each server may carry its policy: `allow` (tool names; absent =
every tool), `approve` (a person approves each call), `deny`, `retry` (`safe` | `never`,
default `never`) and `timeout_seconds` (default 30). Unknown keys are refused, so a typo in
a policy key cannot silently allow a tool.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agent.config import Settings
from agent.contract.tools import FUNCTION_NAME_SEPARATOR, ToolRetry
from agent.tools.errors import ToolsConfigError

DEFAULT_TOOL_TIMEOUT_SECONDS = 30.0
SERVER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
"""A server name is part of the function names the model sees (`[a-zA-Z0-9_-]`), and of
`server.tool`, so it has no dot; `__` joins server and tool, so it has none of that either."""


class ServerPolicy(BaseModel):
    """Which tools of a server a task may call, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: tuple[str, ...] | None = None
    """Tool names a task may call; None = every tool the server lists."""
    approve: tuple[str, ...] = ()
    """Tools whose every call waits for a person's approval."""
    deny: tuple[str, ...] = ()
    """Tools no task may call, whatever `allow` says."""
    retry: ToolRetry = ToolRetry.NEVER
    timeout_seconds: float = Field(default=DEFAULT_TOOL_TIMEOUT_SECONDS, gt=0)

    @model_validator(mode="after")
    def _check_consistent(self) -> ServerPolicy:
        both = sorted(set(self.deny) & set(self.allow or ()))
        if both:
            raise ValueError(f"tools both allowed and denied: {', '.join(both)}")
        both = sorted(set(self.deny) & set(self.approve))
        if both:
            raise ValueError(f"tools both denied and needing approval: {', '.join(both)}")
        if self.allow is not None:
            unlisted = sorted(set(self.approve) - set(self.allow))
            if unlisted:
                raise ValueError(f"tools needing approval but not allowed: {', '.join(unlisted)}")
        return self

    def permits(self, tool: str) -> bool:
        """Whether a task may call `tool` under this policy."""
        if tool in self.deny:
            return False
        return self.allow is None or tool in self.allow


class StdioServer(ServerPolicy):
    """A server the tool layer starts as a subprocess and speaks to over stdio."""

    type: Literal["stdio"] | None = None
    command: str = Field(min_length=1)
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    """Added to a minimal inherited environment (PATH, HOME, ...), as MCP clients do."""
    cwd: Path | None = None


class HttpServer(ServerPolicy):
    """A server already running, spoken to over streamable HTTP."""

    type: Literal["http", "streamable-http", "streamableHttp"] | None = None
    url: str
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// URL")
        return value


ServerConfig = StdioServer | HttpServer


class ToolsConfig(BaseModel):
    """Every configured MCP server by name, in the order of the configuration."""

    model_config = ConfigDict(frozen=True)

    servers: dict[str, ServerConfig] = Field(default_factory=dict)


def parse_tools_config(text: str, source: str = "AGENT_MCP_SERVERS") -> ToolsConfig:
    """Parse the `{"mcpServers": {...}}` JSON text.

    Args:
        text: The JSON text.
        source: Where the text came from, named in errors (a variable or a file path).

    Returns:
        The servers and their policies; servers with `"disabled": true` are left out.

    Raises:
        ToolsConfigError: The text is not JSON of that shape; the message names the source,
            the server and the field.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ToolsConfigError(f"{source}: not valid JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("mcpServers"), dict):
        raise ToolsConfigError(
            f'{source}: must be a JSON object with an "mcpServers" object', field="mcpServers"
        )
    servers: dict[str, ServerConfig] = {}
    for name, entry in document["mcpServers"].items():
        server = _parse_server(source, name, entry)
        if server is not None:
            servers[name] = server
    return ToolsConfig(servers=servers)


def load_tools_config(settings: Settings) -> ToolsConfig:
    """Read the servers from `AGENT_MCP_SERVERS` or the file `AGENT_MCP_CONFIG`; none if unset.

    Raises:
        ToolsConfigError: Both are set, the file cannot be read, or its content is invalid.
    """
    if settings.mcp_servers is not None and settings.mcp_config is not None:
        raise ToolsConfigError("set AGENT_MCP_SERVERS or AGENT_MCP_CONFIG, not both")
    if settings.mcp_servers is not None:
        return parse_tools_config(settings.mcp_servers, "AGENT_MCP_SERVERS")
    if settings.mcp_config is not None:
        path = settings.mcp_config
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ToolsConfigError(f"AGENT_MCP_CONFIG: cannot read {path}: {error}") from error
        return parse_tools_config(text, str(path))
    return ToolsConfig()


def _parse_server(source: str, name: str, entry: Any) -> ServerConfig | None:
    where = f"{source}: mcpServers.{name}"
    if not SERVER_NAME_PATTERN.match(name) or FUNCTION_NAME_SEPARATOR in name:
        raise ToolsConfigError(
            f"{where}: a server name has only letters, digits, '-' and single '_' "
            "(it becomes part of the function names the model sees)",
            server=name,
        )
    if not isinstance(entry, dict):
        raise ToolsConfigError(f"{where}: must be an object", server=name)
    fields = dict(entry)
    if fields.pop("disabled", False) is True:
        return None
    if "command" in fields and "url" in fields:
        raise ToolsConfigError(
            f"{where}: has both `command` (stdio) and `url` (HTTP); keep one", server=name
        )
    model: type[StdioServer] | type[HttpServer]
    if "command" in fields:
        model = StdioServer
    elif "url" in fields:
        model = HttpServer
    else:
        raise ToolsConfigError(
            f"{where}: needs `command` (a stdio server) or `url` (a streamable HTTP server)",
            server=name,
        )
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"unknown key (known: {', '.join(model.model_fields)})"
        label = f"{where}.{field}" if field else where
        raise ToolsConfigError(f"{label}: {message}", server=name, field=field) from error
