"""The verifier's feedback on a rejected attempt reaches the worker's next prompt."""

from __future__ import annotations

import pytest

from agent.events.types import AgentRole, EventType, TaskStatus
from tests.recording_simulator import RecordedRequest, RecordingSimulator, recording_simulator
from tests.workflows.conftest import EngineFactory

pytestmark = pytest.mark.asyncio(loop_scope="session")

FEEDBACK_HEADING = "Feedback on the previous attempt:"


def worker_calls(sim: RecordingSimulator, key: str, attempt: int) -> list[RecordedRequest]:
    """The worker requests of one milestone attempt (its prompt names both)."""
    return [
        r
        for r in sim.calls(AgentRole.WORKER, f"Milestone: {key}\n")
        if f"Attempt: {attempt}\n" in r.prompt or r.prompt.endswith(f"Attempt: {attempt}")
    ]


async def test_rejected_attempt_feedback_is_in_the_next_attempt_prompt(
    engine_factory: EngineFactory,
) -> None:
    async with (
        recording_simulator() as sim,
        engine_factory(llm_base_url=sim.base_url) as engine,
    ):
        # Arrange: every milestone's first attempt is rejected by the verifier.
        handle = await engine.start("Plan a trip [milestones=2] [plan=sequential] [fail_first=1]")

        # Act
        result = await handle.result()

        # Assert
        assert result.status == TaskStatus.COMPLETED
        events = await engine.events(result.task_id)
        retries = {e.details["key"]: e for e in events if e.type == EventType.MILESTONE_RETRY}
        assert sorted(retries) == ["m1", "m2"]
        for key, retry in retries.items():
            feedback = retry.details["feedback"]
            assert retry.details["attempt"] == 1
            assert "incomplete" in feedback
            first = worker_calls(sim, key, attempt=1)
            second = worker_calls(sim, key, attempt=2)
            assert len(first) == 1
            assert len(second) == 1
            assert FEEDBACK_HEADING not in first[0].prompt
            assert f"{FEEDBACK_HEADING}\n{feedback}" in second[0].prompt
