"""The toolbox against the counting MCP server over streamable HTTP, run as a subprocess."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.contract.tools import ToolSpec
from agent.tools.arguments import validate_arguments
from agent.tools.config import parse_tools_config
from agent.tools.errors import ToolCallLostError, ToolCallTimeoutError, ToolServerUnavailable
from agent.tools.toolbox import Toolbox
from tests.polling import wait_until
from tests.tool_servers.process import CountingServer, start_counting_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[CountingServer]:
    running = await start_counting_server(tmp_path / "counters.json")
    yield running
    await running.kill()


@pytest.fixture
async def toolbox(server: CountingServer) -> AsyncIterator[Toolbox]:
    config = {"mcpServers": {"counting": {"url": server.url, "timeout_seconds": 10}}}
    box = Toolbox(parse_tools_config(json.dumps(config)))
    yield box
    await box.aclose()


async def _tool(toolbox: Toolbox, name: str) -> ToolSpec:
    [spec] = await toolbox.resolve([f"counting.{name}"])
    return spec


async def _count(toolbox: Toolbox, key: str) -> int:
    output = await toolbox.call(await _tool(toolbox, "count"), {"key": key})
    return int(output.content)


async def test_lists_the_servers_tools(toolbox: Toolbox) -> None:
    tools = {spec.name for spec in await toolbox.list_tools("counting")}

    assert tools == {"slow", "fail", "side_effect", "count"}


async def test_a_side_effect_runs_once_per_call(toolbox: Toolbox) -> None:
    # Arrange
    side_effect = await _tool(toolbox, "side_effect")

    # Act
    first = await toolbox.call(side_effect, {"key": "k"})
    second = await toolbox.call(side_effect, {"key": "k"})

    # Assert
    assert (first.content, second.content) == ("1", "2")
    assert json.loads(second.structured_content or "") == {"result": 2}
    assert await _count(toolbox, "k") == 2


async def test_a_failing_tool_is_an_error_result(toolbox: Toolbox) -> None:
    output = await toolbox.call(await _tool(toolbox, "fail"), {})

    assert output.is_error is True
    assert "fail" in output.content


async def test_bad_arguments_are_rejected_without_a_call(toolbox: Toolbox, tmp_path: Path) -> None:
    # Arrange
    side_effect = await _tool(toolbox, "side_effect")

    # Act
    results = [validate_arguments(side_effect, raw) for raw in ('{"key": 1}', "{}", "{key")]

    # Assert: each is a message, and nothing ran (the counters file is written on a call).
    assert all(isinstance(result, str) for result in results)
    assert not (tmp_path / "counters.json").exists()


async def test_a_call_past_its_timeout_is_reported_as_a_timeout(toolbox: Toolbox) -> None:
    # Arrange
    slow = (await _tool(toolbox, "slow")).model_copy(update={"timeout_seconds": 0.5})

    # Act
    with pytest.raises(ToolCallTimeoutError) as caught:
        await toolbox.call(slow, {"seconds": 30})

    # Assert
    assert (caught.value.server, caught.value.tool) == ("counting", "slow")
    assert caught.value.timeout_seconds == 0.5
    assert caught.value.may_have_run is True
    assert await _count(toolbox, "after-timeout") == 0  # the session still answers


async def test_parallel_calls_share_the_session(toolbox: Toolbox) -> None:
    # Arrange
    slow = await _tool(toolbox, "slow")

    # Act
    outputs = await asyncio.gather(*(toolbox.call(slow, {"seconds": 1}) for _ in range(3)))

    # Assert
    assert [output.content for output in outputs] == ["slept 1.0 seconds"] * 3


async def test_a_server_killed_between_calls_answers_again_once_restarted(
    toolbox: Toolbox, server: CountingServer
) -> None:
    # Arrange
    side_effect = await _tool(toolbox, "side_effect")
    await toolbox.call(side_effect, {"key": "k"})
    await server.kill()
    restarted = await start_counting_server(server.state, port=server.port)

    # Act
    try:
        output = await toolbox.call(side_effect, {"key": "k"})
    finally:
        await restarted.kill()

    # Assert
    assert output.content == "2"


async def test_a_server_that_is_down_is_unavailable_and_the_call_did_not_run(
    toolbox: Toolbox, server: CountingServer
) -> None:
    # Arrange
    side_effect = await _tool(toolbox, "side_effect")
    await server.kill()

    # Act
    with pytest.raises(ToolServerUnavailable) as caught:
        await toolbox.call(side_effect, {"key": "k"})
    restarted = await start_counting_server(server.state, port=server.port)
    try:
        count = await _count(toolbox, "k")
    finally:
        await restarted.kill()

    # Assert
    assert caught.value.server == "counting"
    assert caught.value.may_have_run is False
    assert count == 0


async def test_a_server_killed_mid_call_is_a_lost_call_and_the_next_call_works(
    toolbox: Toolbox, server: CountingServer
) -> None:
    # Arrange: the effect happens at once, then the tool waits (the answer will be lost).
    side_effect = await _tool(toolbox, "side_effect")
    call = asyncio.create_task(toolbox.call(side_effect, {"key": "k", "delay_seconds": 60}))

    async def counted() -> bool:
        return (
            json.loads(server.state.read_text()).get("k") == 1 if server.state.exists() else False
        )

    await wait_until(counted, "the side effect happened")

    # Act
    await server.kill()
    with pytest.raises(ToolCallLostError) as caught:
        await call
    restarted = await start_counting_server(server.state, port=server.port)
    try:
        count = await _count(toolbox, "k")
    finally:
        await restarted.kill()

    # Assert
    assert caught.value.may_have_run is True
    assert "connection to the server broke" in caught.value.reason
    assert count == 1


async def test_resolve_names_a_server_that_cannot_be_reached(tmp_path: Path) -> None:
    # Arrange: a port that was free a moment ago and has nothing listening now.
    gone = await start_counting_server(tmp_path / "c.json")
    await gone.kill()
    config = {"mcpServers": {"gone": {"url": gone.url}}}
    box = Toolbox(parse_tools_config(json.dumps(config)))

    # Act
    try:
        with pytest.raises(ToolServerUnavailable) as caught:
            await box.resolve(["gone.count"])
    finally:
        await box.aclose()

    # Assert
    assert caught.value.server == "gone"
    assert "ConnectError" in caught.value.reason
