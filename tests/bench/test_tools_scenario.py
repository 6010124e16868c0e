"""The tools scenario's baseline mirrors the project task it is compared with."""

from __future__ import annotations

import pytest

from agent.events.types import AgentRole
from bench.scenarios.tools import TIMEZONES, ToolCallsMissingError, bare_input, tool_directives


def test_the_baseline_calls_the_tools_after_the_first_worker_turn() -> None:
    # Arrange: the roles a project task with one tool-using milestone completed.
    roles = [
        AgentRole.CLASSIFIER,
        AgentRole.PLANNER,
        AgentRole.WORKER,
        AgentRole.WORKER,
        AgentRole.VERIFIER,
        AgentRole.SUMMARISER,
    ]

    # Act
    baseline = bare_input("goal", roles)

    # Assert
    assert baseline.waves == [[role] for role in roles]
    assert baseline.tools_after_wave == 3
    assert [call.arguments["timezone"] for call in baseline.tool_calls] == list(TIMEZONES)
    assert tool_directives().count("[tool=time.get_current_time ") == len(TIMEZONES)


def test_a_task_without_a_worker_call_is_refused() -> None:
    with pytest.raises(ToolCallsMissingError):
        bare_input("goal", [AgentRole.PLANNER, AgentRole.SUMMARISER])
