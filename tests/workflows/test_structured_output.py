"""The planner and verifier ask for structured output where the model supports it."""

from __future__ import annotations

import pytest

from agent.events.types import AgentRole, TaskStatus
from tests.recording_simulator import recording_simulator
from tests.workflows.conftest import EngineFactory

pytestmark = pytest.mark.asyncio(loop_scope="session")

GOAL = "Plan a picnic [milestones=2] [plan=sequential]"


async def test_planner_and_verifier_send_their_json_schema(engine_factory: EngineFactory) -> None:
    async with (
        recording_simulator() as sim,
        engine_factory(llm_base_url=sim.base_url, structured_output_models=["*"]) as engine,
    ):
        # Arrange
        handle = await engine.start(GOAL)

        # Act
        result = await handle.result()

        # Assert
        assert result.status == TaskStatus.COMPLETED
        (plan,) = sim.calls(AgentRole.PLANNER)
        fmt = plan.body["response_format"]
        assert fmt["type"] == "json_schema"
        assert fmt["json_schema"]["name"] == "plan"
        assert fmt["json_schema"]["schema"]["required"] == ["milestones"]
        verdicts = sim.calls(AgentRole.VERIFIER)
        assert len(verdicts) == 2
        assert all(v.body["response_format"]["json_schema"]["name"] == "verdict" for v in verdicts)
        worker = sim.calls(AgentRole.WORKER)
        assert all("response_format" not in w.body for w in worker)


async def test_models_without_structured_output_get_json_mode(
    engine_factory: EngineFactory,
) -> None:
    async with (
        recording_simulator() as sim,
        engine_factory(llm_base_url=sim.base_url, structured_output_models=[]) as engine,
    ):
        # Arrange
        handle = await engine.start(GOAL)

        # Act
        result = await handle.result()

        # Assert
        assert result.status == TaskStatus.COMPLETED
        (plan,) = sim.calls(AgentRole.PLANNER)
        assert plan.body["response_format"] == {"type": "json_object"}
