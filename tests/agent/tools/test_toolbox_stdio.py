"""The toolbox against the reference server `mcp-server-time` over stdio."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent.contract.tools import ToolRetry
from agent.tools.arguments import validate_arguments
from agent.tools.config import parse_tools_config
from agent.tools.errors import ToolCallLostError, ToolServerUnavailable, UnknownToolError
from agent.tools.toolbox import Toolbox
from tests.polling import wait_until
from tests.tool_servers.process import stdio_command

TIME_SERVER = str(Path(sys.executable).parent / "mcp-server-time")


def _toolbox(servers: dict[str, Any]) -> Toolbox:
    return Toolbox(parse_tools_config(json.dumps({"mcpServers": servers})))


@pytest.fixture
async def toolbox(tmp_path: Path) -> AsyncIterator[Toolbox]:
    counting = stdio_command(tmp_path / "counters.json")
    box = _toolbox(
        {
            "time": {"command": TIME_SERVER, "retry": "safe", "timeout_seconds": 12},
            "guarded": {"command": TIME_SERVER, "approve": ["convert_time"]},
            "only": {"command": TIME_SERVER, "allow": ["get_current_time"]},
            "denying": {"command": TIME_SERVER, "deny": ["convert_time"]},
            "counting": {"command": counting[0], "args": counting[1:]},
        }
    )
    yield box
    await box.aclose()


def _server_processes() -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if any("mcp-server-time" in part for part in child.cmdline())
    ]


async def test_lists_the_tools_with_the_policy_applied(toolbox: Toolbox) -> None:
    # Act
    tools = {spec.name: spec for spec in await toolbox.list_tools("time")}

    # Assert
    assert set(tools) == {"get_current_time", "convert_time"}
    current = tools["get_current_time"]
    assert current.qualified_name == "time.get_current_time"
    assert current.function_name == "time__get_current_time"
    assert current.retry is ToolRetry.SAFE
    assert current.timeout_seconds == 12
    assert current.needs_approval is False
    assert "timezone" in current.input_schema["properties"]
    assert current.description


async def test_approve_allow_and_deny_shape_the_list(toolbox: Toolbox) -> None:
    # Act
    guarded = {spec.name: spec.needs_approval for spec in await toolbox.list_tools("guarded")}
    only = [spec.name for spec in await toolbox.list_tools("only")]
    denying = [spec.name for spec in await toolbox.list_tools("denying")]

    # Assert
    assert guarded == {"get_current_time": False, "convert_time": True}
    assert only == ["get_current_time"]
    assert denying == ["get_current_time"]
    assert {spec.retry for spec in await toolbox.list_tools("guarded")} == {ToolRetry.NEVER}


async def test_calls_get_current_time_in_utc(toolbox: Toolbox) -> None:
    # Arrange
    [spec] = await toolbox.resolve(["time.get_current_time"])
    arguments = validate_arguments(spec, '{"timezone": "UTC"}')
    assert isinstance(arguments, dict)

    # Act
    output = await toolbox.call(spec, arguments)

    # Assert
    assert output.is_error is False
    answer = json.loads(output.content)
    assert answer["timezone"] == "UTC"
    assert answer["datetime"].endswith("+00:00")
    assert json.loads(output.structured_content or "")["timezone"] == "UTC"


async def test_resolve_takes_servers_and_single_tools(toolbox: Toolbox) -> None:
    # Act
    chosen = await toolbox.resolve(["guarded", "only.get_current_time", "guarded.convert_time"])

    # Assert
    assert [spec.qualified_name for spec in chosen] == [
        "guarded.get_current_time",
        "guarded.convert_time",
        "only.get_current_time",
    ]


async def test_resolve_none_is_every_allowed_tool_of_every_server(toolbox: Toolbox) -> None:
    chosen = {spec.qualified_name for spec in await toolbox.resolve(None)}

    assert "denying.convert_time" not in chosen
    assert "only.convert_time" not in chosen
    assert {"time.convert_time", "denying.get_current_time", "counting.side_effect"} <= chosen


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("nowhere", "no MCP server 'nowhere' is configured"),
        ("nowhere.get_current_time", "no MCP server 'nowhere' is configured"),
        ("time.no_such_tool", "has no tool 'no_such_tool' (it lists: get_current_time, "),
        ("denying.convert_time", "the policy of MCP server 'denying' denies it"),
        ("only.convert_time", "the policy of MCP server 'only' denies it"),
    ],
)
async def test_resolve_names_the_entry_it_cannot_use(
    toolbox: Toolbox, entry: str, words: str
) -> None:
    with pytest.raises(UnknownToolError) as caught:
        await toolbox.resolve(["time", entry])

    assert caught.value.entry == entry
    assert words in caught.value.reason


async def test_a_server_that_cannot_start_is_named(tmp_path: Path) -> None:
    # Arrange
    box = _toolbox({"broken": {"command": str(tmp_path / "no-such-server")}})

    # Act
    try:
        with pytest.raises(ToolServerUnavailable) as caught:
            await box.resolve(None)
    finally:
        await box.aclose()

    # Assert
    assert caught.value.server == "broken"
    assert "no-such-server" in str(caught.value)


async def test_a_server_killed_between_calls_is_restarted(toolbox: Toolbox) -> None:
    # Arrange
    [spec] = await toolbox.resolve(["time.get_current_time"])
    await toolbox.call(spec, {"timezone": "UTC"})
    [first] = _server_processes()
    first.kill()

    async def noticed() -> bool:
        return not toolbox.connected("time")

    await wait_until(noticed, "the toolbox noticed the server exit")

    # Act
    output = await toolbox.call(spec, {"timezone": "Europe/Paris"})

    # Assert
    assert output.is_error is False
    assert json.loads(output.content)["timezone"] == "Europe/Paris"
    [second] = _server_processes()
    assert second.pid != first.pid


async def test_a_stdio_server_killed_mid_call_is_a_lost_call_then_restarted(
    toolbox: Toolbox, tmp_path: Path
) -> None:
    # Arrange: the effect happens at once, then the tool waits (the answer will be lost).
    [side_effect, count] = await toolbox.resolve(["counting.side_effect", "counting.count"])
    call = asyncio.create_task(toolbox.call(side_effect, {"key": "k", "delay_seconds": 60}))
    state = tmp_path / "counters.json"

    async def counted() -> bool:
        return state.exists() and json.loads(state.read_text()).get("k") == 1

    await wait_until(counted, "the side effect happened")
    [process] = [
        child
        for child in psutil.Process().children(recursive=True)
        if "tests.tool_servers.counting_server" in child.cmdline()
    ]

    # Act
    process.kill()
    with pytest.raises(ToolCallLostError) as caught:
        await call
    after = await toolbox.call(count, {"key": "k"})

    # Assert
    assert caught.value.may_have_run is True
    assert after.content == "1"


async def test_closing_the_toolbox_stops_its_servers(tmp_path: Path) -> None:
    # Arrange
    box = _toolbox({"time": {"command": TIME_SERVER}})
    await box.list_tools("time")
    assert len(_server_processes()) == 1

    # Act
    await box.aclose()

    # Assert
    async def stopped() -> bool:
        return not _server_processes()

    await wait_until(stopped, "the stdio server stopped")
