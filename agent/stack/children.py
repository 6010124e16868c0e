"""How `agent up` launches its children: their command lines and environments.

Children (the worker, the API, the simulator) are `agent` sub-commands of this very
interpreter; they learn where every service is from `AGENT_*` variables, so they need no
configuration of their own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from agent.config import Settings


def agent_command(*args: str) -> list[str]:
    """Command line running an `agent` sub-command with this interpreter's environment."""
    script = Path(sys.executable).parent / "agent"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from agent.cli.main import main; main()", *args]


def base_environment(data_dir: Path) -> dict[str, str]:
    """The environment of every child: ours, the data dir, and JSON logs.

    Args:
        data_dir: The stack's data directory.

    Returns:
        A fresh environment mapping.
    """
    env = dict(os.environ)
    env["AGENT_DATA_DIR"] = str(data_dir)
    # A one-machine development stack: its API may use the public default pepper.
    env.setdefault("AGENT_ALLOW_DEFAULT_PEPPER", "true")
    # Children write to log files, never to a terminal.
    env.setdefault("AGENT_LOG_JSON", "true")
    return env


def child_environment(data_dir: Path, resolved: Mapping[str, str | None]) -> dict[str, str]:
    """The environment of the worker and the API: `base_environment` plus the services.

    Args:
        data_dir: The stack's data directory.
        resolved: `AGENT_*` settings as the stack resolved them; None unsets a variable
            (so a stray value in our own environment cannot point a child elsewhere).

    Returns:
        A fresh environment mapping.
    """
    env = base_environment(data_dir)
    for name, value in resolved.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def tool_environment(settings: Settings) -> dict[str, str | None]:
    """`AGENT_MCP_SERVERS` / `AGENT_MCP_CONFIG` for the worker and the API, as resolved here.

    The values come from the settings `agent up` read (its environment or `.env`), so a
    `.env` value reaches the children too; a relative `AGENT_MCP_CONFIG` becomes absolute
    (it was read relative to where `agent up` was started). The one not set is unset in
    the children (None), so they never see both.

    Args:
        settings: The settings of `agent up`.

    Returns:
        The two variables, None for the one (or both) not set.
    """
    config = settings.mcp_config
    return {
        "AGENT_MCP_SERVERS": settings.mcp_servers,
        "AGENT_MCP_CONFIG": str(config.expanduser().resolve()) if config is not None else None,
    }
