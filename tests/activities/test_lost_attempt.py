"""Tokens streamed by an attempt whose worker died are billed by the next attempt."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.agent_activities import AgentActivities
from activities.models import StreamUsage, SummariseInput
from agent.db.session import DatabaseSessionManager
from agent.events.types import EventType
from agent.llm.client import LLMClient
from agent.llm.simulator.server import SimulatorServer
from agent.repositories.events import EventRepository
from agent.repositories.tasks import TaskRepository
from agent.repositories.users import UserRepository
from tests.activities.dying_attempt import ACTIVITY_ID, HEARTBEAT_PREFIX
from tests.workflows.conftest import engine_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

SLOW_GOAL = "Summarise slowly [output_tokens=400][tps=100]"
"""About four seconds of streaming: time to kill the attempt half-way."""


async def _heartbeat_until_output(proc: asyncio.subprocess.Process) -> list[Any] | None:
    """Read the attempt's heartbeat details until one reports output tokens; None at EOF."""
    assert proc.stdout is not None
    while line := (await proc.stdout.readline()).decode():
        if not line.startswith(HEARTBEAT_PREFIX):
            continue
        details = json.loads(line.removeprefix(HEARTBEAT_PREFIX))
        if details and StreamUsage.model_validate(details[0]).output_tokens > 0:
            return list(details)
    return None


async def test_attempt_killed_mid_stream_is_billed_by_the_next_attempt(
    database_url: str,
    session_manager: DatabaseSessionManager,
    engine_simulator: SimulatorServer,
) -> None:
    # Arrange
    async with session_manager.session() as session, session.begin():
        user = await UserRepository(session).get_or_create("lost-attempt-user")
        task = await TaskRepository(session).create(user_id=user.id, goal=SLOW_GOAL)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.activities.dying_attempt",
        database_url,
        engine_simulator.base_url,
        str(task.id),
        task.workflow_id,
        stdout=asyncio.subprocess.PIPE,
    )

    # Act: attempt 1 streams until it has heartbeaten some output, then its process is
    # SIGKILLed; attempt 2 starts with the last heartbeat details, as Temporal gives them.
    try:
        details = await _heartbeat_until_output(proc)
    finally:
        proc.kill()
        await proc.wait()
    assert details is not None, "attempt 1 never heartbeat any streamed usage"
    lost = StreamUsage.model_validate(details[0])
    settings = engine_settings(engine_simulator.base_url)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        workflow_id=task.workflow_id,
        activity_id=ACTIVITY_ID,
        attempt=2,
        heartbeat_details=details,
    )
    async with LLMClient(settings) as llm:
        agents = AgentActivities(session_manager, llm, settings)
        output = await env.run(agents.summarise, SummariseInput(task_id=task.id, model="m"))
        # A retry of attempt 2 (say, after its commit) bills nothing again.
        again = await env.run(agents.summarise, SummariseInput(task_id=task.id, model="m"))

    # Assert
    async with session_manager.session() as session:
        events = await EventRepository(session).list_after(task.id, 0)
        stored = await TaskRepository(session).usage_totals(task.id)
    failed = [e for e in events if e.type == EventType.AGENT_FAILED]
    assert len(failed) == 1
    assert failed[0].details["lost"] is True
    assert failed[0].details["activity_attempt"] == 1
    assert failed[0].details["partial_usage"]["output_tokens"] == lost.output_tokens
    assert lost.input_tokens > 0
    assert 0 < lost.output_tokens < output.usage.output_tokens
    assert again == output
    assert (stored.input_tokens, stored.output_tokens) == (
        lost.input_tokens + output.usage.input_tokens,
        lost.output_tokens + output.usage.output_tokens,
    )
