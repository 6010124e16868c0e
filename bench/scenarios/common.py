"""Helpers shared by scenarios: goals with simulator directives, the calls of a task."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import select

from agent.db.models import Event
from agent.events.types import AgentRole, EventType
from bench.client import BenchClients


def goal(label: str, directives: str) -> str:
    """A task goal carrying simulator directives (the engine puts the goal in every prompt)."""
    return f"bench {label}: write a short report {directives}"


async def llm_calls_of(clients: BenchClients, task_id: str) -> list[AgentRole]:
    """The roles of a task's LLM calls, in the order they completed (`LLM_COMPLETE`)."""
    stmt = (
        select(Event.agent)
        .where(Event.task_id == task_id, Event.type == EventType.LLM_COMPLETE.value)
        .order_by(Event.sequence_number)
    )
    async with clients.db.session() as session:
        agents = (await session.execute(stmt)).scalars().all()
    return [AgentRole(a) for a in agents if a is not None]


def sequential_waves(roles: list[AgentRole]) -> list[list[AgentRole]]:
    """One call per wave: what a sequential plan does."""
    return [[role] for role in roles]


async def closed_loop(concurrency: int, total: int, one: Callable[[], Awaitable[object]]) -> float:
    """Run `total` jobs with `concurrency` in flight; return the wall time."""
    remaining = total

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started
