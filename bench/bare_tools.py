"""The tool baseline: a bare Temporal workflow making a task's LLM calls and tool calls.

`BareToolTaskWorkflow` makes the same LLM calls as a project task (`BareActivities`, wave
after wave) and, after the wave given, the task's tool calls: one activity listing the
tools (as the project pins them at task start, it lists them once per task) and one
activity per call, all calls at once (as the project runs the calls of one model turn),
through the same `Toolbox` (the `mcp` SDK client) on the same server. Nothing is stored.

`BENCH_TOOL_SERVERS` is the configuration both sides use: the reference server
`mcp-server-time` over stdio, started by each worker process on first use.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from agent.contract.tools import ToolSpec
    from agent.events.types import AgentRole
    from agent.tools.toolbox import Toolbox
    from bench.bare_workflow import (
        BARE_CALL_TIMEOUT,
        BARE_RETRY_POLICY,
        BareActivities,
        BareCall,
    )

TIME_SERVER = "time"
TOOL_CALL_TIMEOUT = timedelta(minutes=1)


def bench_tool_servers() -> str:
    """`AGENT_MCP_SERVERS` of both sides: `mcp-server-time` (UTC) beside this interpreter."""
    command = str(Path(sys.executable).parent / "mcp-server-time")
    server = {"command": command, "args": ["--local-timezone", "UTC"], "retry": "safe"}
    return json.dumps({"mcpServers": {TIME_SERVER: server}})


class BareToolCall(BaseModel):
    """One tool call of the baseline: `server.tool` and its arguments."""

    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class BareToolCallInput(BaseModel):
    """What the tool-call activity gets: the listed tool and the call's arguments."""

    spec: ToolSpec
    arguments: dict[str, Any] = Field(default_factory=dict)


class BareToolCallResult(BaseModel):
    """Sizes only, like the project's claim-check."""

    chars: int
    is_error: bool


class BareToolTaskInput(BaseModel):
    """The LLM calls of one baseline task, and its tool calls after wave `tools_after_wave`."""

    goal: str
    waves: list[list[AgentRole]] = Field(min_length=1)
    tool_calls: list[BareToolCall] = Field(min_length=1)
    tools_after_wave: int = Field(ge=1)
    """1 = after the first wave."""


class BareToolTaskResult(BaseModel):
    """Calls made."""

    llm_calls: int
    tool_calls: int
    tool_errors: int


class BareToolActivities:
    """List tools and call one, through the toolbox; nothing stored.

    Args:
        toolbox: The same toolbox class the project's worker uses.
    """

    def __init__(self, toolbox: Toolbox) -> None:
        self._toolbox = toolbox

    @activity.defn(name="bare_list_tools")
    async def list_tools(self, names: list[str]) -> list[ToolSpec]:
        """The tools named (`server.tool`), read from their servers."""
        return await self._toolbox.resolve(names)

    @activity.defn(name="bare_tool_call")
    async def call(self, data: BareToolCallInput) -> BareToolCallResult:
        """Call one tool and return the size of its result."""
        output = await self._toolbox.call(data.spec, data.arguments)
        return BareToolCallResult(chars=len(output.content), is_error=output.is_error)


@workflow.defn
class BareToolTaskWorkflow:
    """The LLM calls wave by wave, with the tool calls after one wave."""

    @workflow.run
    async def run(self, data: BareToolTaskInput) -> BareToolTaskResult:
        """List the tools, then run the waves; the tool calls run at once after theirs."""
        names = sorted({call.tool for call in data.tool_calls})
        specs = await workflow.execute_activity_method(
            BareToolActivities.list_tools,
            names,
            start_to_close_timeout=TOOL_CALL_TIMEOUT,
            retry_policy=BARE_RETRY_POLICY,
        )
        by_name = {spec.qualified_name: spec for spec in specs}
        llm_calls = errors = 0
        for number, wave in enumerate(data.waves):
            await asyncio.gather(
                *(
                    workflow.execute_activity_method(
                        BareActivities.llm_call,
                        BareCall(role=role, goal=data.goal, index=llm_calls + i),
                        start_to_close_timeout=BARE_CALL_TIMEOUT,
                        retry_policy=BARE_RETRY_POLICY,
                    )
                    for i, role in enumerate(wave)
                )
            )
            llm_calls += len(wave)
            if number + 1 == data.tools_after_wave:
                results = await asyncio.gather(
                    *(
                        workflow.execute_activity_method(
                            BareToolActivities.call,
                            BareToolCallInput(spec=by_name[call.tool], arguments=call.arguments),
                            start_to_close_timeout=TOOL_CALL_TIMEOUT,
                            retry_policy=BARE_RETRY_POLICY,
                        )
                        for call in data.tool_calls
                    )
                )
                errors = sum(1 for r in results if r.is_error)
        return BareToolTaskResult(
            llm_calls=llm_calls, tool_calls=len(data.tool_calls), tool_errors=errors
        )
