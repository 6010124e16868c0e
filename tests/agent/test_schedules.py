"""`ensure_retention_schedule` against a real dev server: created once however many workers
start together, updated when the retention changes, paused when it is unset."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from temporalio.client import Client, ScheduleIntervalSpec, ScheduleOverlapPolicy
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from agent.contract.retention import RETENTION_SCHEDULE_ID
from agent.schedules import (
    PAUSED_NOTE,
    RETENTION_AT,
    RETENTION_CATCHUP_WINDOW,
    RETENTION_EVERY,
    ScheduleOutcome,
    ensure_retention_schedule,
    retention_note,
)
from agent.temporal import data_converter
from tests.namespaces import new_namespace
from tests.workflows.conftest import temporal_env

__all__ = ["temporal_env"]

QUEUE = "retention-schedule-test"


async def _namespace_client(env: WorkflowEnvironment) -> Client:
    namespace = await new_namespace(env.client, "retention")
    return await Client.connect(
        env.client.service_client.config.target_host,
        namespace=namespace,
        data_converter=data_converter,
    )


async def test_workers_starting_together_create_one_schedule_as_wanted(
    temporal_dev_env: WorkflowEnvironment,
) -> None:
    # Arrange
    client = await _namespace_client(temporal_dev_env)

    # Act
    outcomes = await asyncio.gather(
        *(ensure_retention_schedule(client, 30, QUEUE) for _ in range(4))
    )

    # Assert
    assert Counter(outcomes) == Counter({ScheduleOutcome.CREATED: 1, ScheduleOutcome.UNCHANGED: 3})
    described = await client.get_schedule_handle(RETENTION_SCHEDULE_ID).describe()
    schedule = described.schedule
    assert schedule.spec.intervals == [
        ScheduleIntervalSpec(every=RETENTION_EVERY, offset=RETENTION_AT)
    ]
    assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert schedule.policy.catchup_window == RETENTION_CATCHUP_WINDOW
    assert not schedule.state.paused
    assert schedule.state.note == retention_note(30, QUEUE)


async def test_a_changed_retention_updates_and_an_unset_one_pauses_the_schedule(
    temporal_dev_env: WorkflowEnvironment,
) -> None:
    # Arrange
    client = await _namespace_client(temporal_dev_env)
    handle = client.get_schedule_handle(RETENTION_SCHEDULE_ID)
    absent = await ensure_retention_schedule(client, None, QUEUE)
    await ensure_retention_schedule(client, 30, QUEUE)

    # Act
    changed = await ensure_retention_schedule(client, 7, QUEUE)
    after_change = (await handle.describe()).schedule.state
    paused = await ensure_retention_schedule(client, None, QUEUE)
    paused_again = await ensure_retention_schedule(client, None, QUEUE)
    after_pause = (await handle.describe()).schedule.state
    resumed = await ensure_retention_schedule(client, 7, QUEUE)
    after_resume = (await handle.describe()).schedule.state

    # Assert
    assert absent == ScheduleOutcome.ABSENT
    assert changed == ScheduleOutcome.UPDATED
    assert after_change.note == retention_note(7, QUEUE)
    assert (paused, paused_again) == (ScheduleOutcome.PAUSED, ScheduleOutcome.UNCHANGED)
    assert after_pause.paused
    assert after_pause.note == PAUSED_NOTE
    assert resumed == ScheduleOutcome.UPDATED
    assert not after_resume.paused
    assert after_resume.note == retention_note(7, QUEUE)


async def test_a_server_without_schedules_stops_the_worker_only_when_retention_is_on(
    temporal_env: WorkflowEnvironment,
) -> None:
    # Arrange: Temporal's time-skipping test server implements no schedules.
    client = temporal_env.client

    # Act
    off = await ensure_retention_schedule(client, None, QUEUE)
    with pytest.raises(RPCError) as refused:
        await ensure_retention_schedule(client, 30, QUEUE)

    # Assert
    assert off == ScheduleOutcome.UNCHECKED
    assert refused.value.status != RPCStatusCode.NOT_FOUND
