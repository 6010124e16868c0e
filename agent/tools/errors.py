"""Errors of the tool layer, each naming what a person or a model must change.

A failed call says whether the tool may have run (`may_have_run`): a call that never
reached its server can run again whatever the tool's retry policy; one that may have run
runs again only when the policy says `safe`.
"""

from __future__ import annotations


class ToolError(Exception):
    """Base of the tool layer's errors."""


class ToolsConfigError(ToolError):
    """The MCP server configuration is invalid; the message is fit for a CLI to print.

    Attributes:
        server: The server whose entry is wrong, or None for the file as a whole.
        field: The field that is wrong (`timeout_seconds`, `allow`, ...), or None.
    """

    def __init__(self, message: str, *, server: str | None = None, field: str | None = None):
        super().__init__(message)
        self.server = server
        self.field = field


class UnknownToolError(ToolError):
    """A requested server or tool does not exist or the policy does not allow it.

    Attributes:
        entry: The entry as requested (`time`, `time.get_current_time`).
        reason: Why it cannot be used.
    """

    def __init__(self, entry: str, reason: str):
        super().__init__(f"{entry}: {reason}")
        self.entry = entry
        self.reason = reason


class ToolServerUnavailable(ToolError):  # noqa: N818 (the name the API and workflow use)
    """A server could not be started, reached or asked; no call reached it.

    Attributes:
        server: The server's name in the configuration.
        reason: What went wrong.
    """

    may_have_run = False

    def __init__(self, server: str, reason: str):
        super().__init__(f"MCP server {server!r} is unavailable: {reason}")
        self.server = server
        self.reason = reason


class ToolCallError(ToolError):
    """A call reached its server but no result came back; the tool may have run.

    Attributes:
        server: The server's name.
        tool: The tool's name on that server.
        reason: What went wrong.
    """

    may_have_run = True

    def __init__(self, server: str, tool: str, reason: str):
        super().__init__(f"{server}.{tool}: {reason}")
        self.server = server
        self.tool = tool
        self.reason = reason


class ToolCallTimeoutError(ToolCallError):
    """The call did not answer within the tool's timeout (the request was cancelled).

    Attributes:
        timeout_seconds: The timeout that ran out.
    """

    def __init__(self, server: str, tool: str, timeout_seconds: float):
        super().__init__(server, tool, f"no answer within {timeout_seconds:g} seconds")
        self.timeout_seconds = timeout_seconds


class ToolCallLostError(ToolCallError):
    """The connection to the server broke during the call (the server crashed or went away)."""
