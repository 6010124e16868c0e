"""`agent up` with tool servers: the configuration reaches the worker and the API it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import Settings
from agent.stack.children import child_environment, tool_environment
from agent.stack.info import StackInfo
from agent.stack.ports import free_port
from agent.stack.readiness import ready_report

SERVERS = json.dumps({"mcpServers": {"time": {"command": "mcp-server-time"}}})


def test_the_servers_json_is_passed_on_and_a_stray_config_path_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Arrange: AGENT_MCP_SERVERS is what `agent up` read; a stray AGENT_MCP_CONFIG lingers.
    monkeypatch.setenv("AGENT_MCP_CONFIG", "/elsewhere/tools.json")
    settings = Settings(_env_file=None, mcp_servers=SERVERS, mcp_config=None)

    # Act
    env = child_environment(tmp_path, tool_environment(settings))

    # Assert
    assert env["AGENT_MCP_SERVERS"] == SERVERS
    assert "AGENT_MCP_CONFIG" not in env


def test_a_relative_config_path_reaches_the_children_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Arrange: a path relative to where `agent up` runs.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENT_MCP_SERVERS", raising=False)
    settings = Settings(_env_file=None, mcp_config=Path("tools.json"))

    # Act
    env = child_environment(tmp_path / "data", tool_environment(settings))

    # Assert
    assert env["AGENT_MCP_CONFIG"] == str(tmp_path / "tools.json")
    assert "AGENT_MCP_SERVERS" not in env


def test_the_ready_report_names_the_tool_servers(tmp_path: Path) -> None:
    info = StackInfo.model_validate(
        {
            "api_url": "http://127.0.0.1:8000",
            "temporal_address": "127.0.0.1:7233",
            "temporal_namespace": "default",
            "temporal_ui_url": None,
            "task_queue": "agent-tasks",
            "database_url": "postgresql://x@127.0.0.1/agent",
            "redis_url": None,
            "llm_base_url": None,
            "api_key": "agk_test",
            "pid": 1,
            "started_at": "2026-12-01T00:00:00Z",
        }
    )

    with_tools = ready_report(
        info,
        data_dir=tmp_path,
        logs_dir=tmp_path,
        simulated_llm=True,
        ready_after=1.0,
        tool_servers=["time", "docs"],
    )
    without = ready_report(
        info, data_dir=tmp_path, logs_dir=tmp_path, simulated_llm=True, ready_after=1.0
    )

    assert "  Tool servers   time, docs" in with_tools
    assert "  Tool servers   (none: AGENT_MCP_SERVERS unset)" in without


def test_up_with_an_invalid_tool_configuration_names_it_and_starts_nothing(
    tmp_path: Path,
) -> None:
    # Arrange
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")}
    env["AGENT_MCP_SERVERS"] = '{"mcpServers": {"time": {}}}'
    data_dir = tmp_path / "data"

    # Act
    result = subprocess.run(
        [
            *(sys.executable, "-c", "from agent.cli.main import main; main()", "up"),
            *("--data-dir", str(data_dir), "--api-port", str(free_port())),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )

    # Assert
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("error: AGENT_MCP_SERVERS: mcpServers.time"), result.stderr
    assert not (data_dir / "postgres").exists()
