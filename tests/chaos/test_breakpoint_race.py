"""Scenario 6: the same breakpoint resumed 100 times at once: one takes effect, 99 get 409."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from agent.db.models import BreakpointDecision, Event
from agent.events.types import EventType, TaskStatus
from tests.chaos.clients import Api, Follower, new_tag
from tests.chaos.harness import Cluster
from tests.chaos.scenario import finish, reference_outcomes

CONCURRENT_RESUMES = 100
GOAL = "Plan a garden layout [milestones=2][plan=sequential]"
OPTIONS: dict[str, Any] = {"max_attempts": 2, "complexity": "simple"}


@pytest.mark.chaos
@pytest.mark.chaos_quick
@pytest.mark.timeout(600)
async def test_concurrent_resumes_take_effect_once(cluster_factory: Callable[..., Any]) -> None:
    cluster: Cluster = await cluster_factory()
    owner = cluster.users[0]
    api = Api(cluster.api_url, owner.key)
    try:
        reference = await reference_outcomes(cluster, api, [GOAL], **OPTIONS)
        task_id = await api.create_task(
            f"{GOAL} {new_tag()}", breakpoints=["after_plan"], **OPTIONS
        )
        follower = Follower(cluster.ws_url, task_id, owner.key)
        following = asyncio.create_task(follower.run())
        paused = await api.wait_status(task_id, frozenset({TaskStatus.PAUSED}))
        breakpoint_id = paused["paused"]["breakpoint_id"]

        # Act: 100 identical resumes, released together over separate connections.
        gate = asyncio.Event()

        async def resume() -> int:
            async with httpx.AsyncClient(
                base_url=cluster.api_url,
                headers={"Authorization": f"Bearer {owner.key}"},
                timeout=60.0,
            ) as http:
                await gate.wait()
                response = await http.post(
                    f"/v1/tasks/{task_id}/resume",
                    json={"breakpoint_id": breakpoint_id, "action": "continue"},
                )
                return response.status_code

        calls = [asyncio.create_task(resume()) for _ in range(CONCURRENT_RESUMES)]
        await asyncio.sleep(0.5)
        gate.set()
        statuses = Counter(await asyncio.gather(*calls))
        print(f"resume answers: {dict(statuses)}")

        report = await finish(
            cluster,
            "breakpoint-race",
            api,
            [task_id],
            {task_id: reference[GOAL]},
            [follower],
            [following],
        )
        async with cluster.db().session() as session:
            decisions = await session.scalar(
                select(func.count())
                .select_from(BreakpointDecision)
                .where(BreakpointDecision.task_id == task_id)
            )
            resumed = await session.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.task_id == task_id, Event.type == EventType.BREAKPOINT_RESUMED)
            )
    finally:
        await api.aclose()
    assert statuses == Counter({httpx.codes.OK: 1, httpx.codes.CONFLICT: CONCURRENT_RESUMES - 1})
    assert (decisions, resumed) == (1, 1)
    assert report.violations == []
