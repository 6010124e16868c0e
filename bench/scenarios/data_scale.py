"""Scenario 10: the API's reads at 1,000 and at 1,000,000 stored events (`scale_events`).

The same three reads, through the real API over HTTP and WebSocket, first with about
1,000 events stored, then again after bulk-loading history to 1,000,000 (2,000 finished
tasks of 500 events over 10 users, `bench.scale_data`) and ANALYZE:

- an event page: `GET /v1/tasks/{id}/events?after_seq=200&limit=100` of a 500-event task;
- a session socket's backfill: connect to `/v1/sessions/{id}/events/ws` with a cursor in
  the middle of the session and read until `caught_up` (250 events);
- `GET /v1/tasks?limit=50` (the user's newest tasks, keyset-paginated).

Each read returns the same rows at both sizes (the loaded history is older than the
baseline's tasks and in other sessions), so the ratio 1M / 1k of the median latency is
the cost of the larger tables alone. Target: <= 1.5. Requests are sequential (one at a
time) after a warm-up, so the figure is latency, not throughput.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, text
from websockets.asyncio.client import connect

from agent.db.models import Event, Task
from bench.harness import Bench
from bench.model import Figure, ScenarioResult, at_most, percentile, ratio
from bench.scale_data import create_users, load_tasks

TARGET = at_most(1.5)
BASE_TASK_EVENTS = 500
LIST_TASKS = 50
LIST_TASK_EVENTS = 10
LOADED_TASK_EVENTS = 500
LOADED_USERS = 9
PAGE_AFTER, PAGE_LIMIT = 200, 100
BACKFILL_AFTER_SEQ = 250
WARMUP_REQUESTS = 20
READS = ("event page", "session socket backfill", "GET /v1/tasks")


class ImpossibleScaleResultError(RuntimeError):
    """The scenario's own numbers cannot be right, so it reports no figure at all."""


Read = Callable[[], Awaitable[int]]
"""One read; returns how many items it got (checked against what it must get)."""


async def _stored_events(bench: Bench) -> int:
    async with bench.clients.db.session() as session:
        return int((await session.execute(select(func.count()).select_from(Event))).scalar_one())


async def _load(bench: Bench, prefix: str, users: list[UUID], **sizes: Any) -> int:
    async with bench.clients.db.engine.begin() as conn:
        loaded = await load_tasks(conn, prefix, users, **sizes)
    return loaded.events


async def _baseline(bench: Bench) -> tuple[UUID, UUID, int]:
    """The target task (its own session) and the user's newest tasks: ~1,000 events."""
    user = bench.clients.user_id
    assert user is not None
    now = datetime.now(UTC)
    tag = bench.run_tag
    await _load(
        bench,
        f"scale{tag}a",
        [user],
        tasks=1,
        events_per_task=BASE_TASK_EVENTS,
        tasks_per_session=1,
        oldest=now - timedelta(minutes=1),
    )
    await _load(
        bench,
        f"scale{tag}b",
        [user],
        tasks=LIST_TASKS,
        events_per_task=LIST_TASK_EVENTS,
        oldest=now - timedelta(minutes=1),
    )
    async with bench.clients.db.session() as session:
        task_id, session_id = (
            await session.execute(
                select(Task.id, Task.session_id).where(Task.workflow_id == f"scale{tag}a-task-0")
            )
        ).one()
        cursor = (
            await session.execute(
                select(Event.id).where(
                    Event.task_id == task_id, Event.sequence_number == BACKFILL_AFTER_SEQ
                )
            )
        ).scalar_one()
    assert session_id is not None
    return task_id, session_id, cursor


def _reads(bench: Bench, task_id: UUID, session_id: UUID, cursor: int) -> dict[str, Read]:
    http = bench.clients.http
    info = bench.stack.info

    async def event_page() -> int:
        response = await http.get(
            f"/v1/tasks/{task_id}/events", params={"after_seq": PAGE_AFTER, "limit": PAGE_LIMIT}
        )
        response.raise_for_status()
        return len(response.json()["items"])

    async def session_backfill() -> int:
        url = info.api_url.replace("http://", "ws://", 1)
        got = 0
        async with connect(
            f"{url}/v1/sessions/{session_id}/events/ws?after_seq={cursor}",
            additional_headers={"Authorization": f"Bearer {info.api_key}"},
            max_size=None,
            ping_interval=None,
        ) as ws:
            async for raw in ws:
                kind = json.loads(raw)["kind"]
                if kind == "caught_up":
                    return got
                got += kind == "event"
        return -1  # closed before caught_up

    async def task_list() -> int:
        response = await http.get("/v1/tasks", params={"limit": LIST_TASKS})
        response.raise_for_status()
        return len(response.json()["items"])

    return dict(zip(READS, (event_page, session_backfill, task_list), strict=True))


EXPECTED = {
    "event page": PAGE_LIMIT,
    "session socket backfill": BASE_TASK_EVENTS - BACKFILL_AFTER_SEQ,
    "GET /v1/tasks": LIST_TASKS,
}


async def _time(
    reads: dict[str, Read], requests: int, problems: list[str], size: str
) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    for name, read in reads.items():
        for _ in range(WARMUP_REQUESTS):
            await read()
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            got = await read()
            samples.append((time.perf_counter() - started) * 1000)
            if got != EXPECTED[name]:
                problems.append(f"{name} at {size} got {got} items, not {EXPECTED[name]}")
        timings[name] = samples
    return timings


async def run(bench: Bench) -> ScenarioResult:
    """Time the three reads at ~1,000 events, bulk-load to 1,000,000, time them again."""
    requests, scale_events = bench.params.scale_requests, bench.params.scale_events
    result = ScenarioResult("data_scale", f"10. Reads at {scale_events:,} stored events")
    task_id, session_id, cursor = await _baseline(bench)
    reads = _reads(bench, task_id, session_id, cursor)
    problems: list[str] = []
    small_count = await _stored_events(bench)
    small = await _time(reads, requests, problems, f"{small_count:,}")
    user = bench.clients.user_id
    assert user is not None
    async with bench.clients.db.engine.begin() as conn:
        others = await create_users(conn, f"scale{bench.run_tag}", LOADED_USERS)
    missing = scale_events - small_count
    tasks = missing // LOADED_TASK_EVENTS
    started = time.perf_counter()
    await _load(
        bench,
        f"scale{bench.run_tag}c",
        [user, *others],
        tasks=tasks,
        events_per_task=LOADED_TASK_EVENTS,
        oldest=datetime.now(UTC) - timedelta(days=60),
    )
    async with bench.clients.db.engine.connect() as conn:
        await conn.execute(text("ANALYZE events"))
        await conn.execute(text("ANALYZE tasks"))
        await conn.commit()
    load_seconds = time.perf_counter() - started
    large_count = await _stored_events(bench)
    large = await _time(reads, requests, problems, f"{large_count:,}")
    if large_count < scale_events - LOADED_TASK_EVENTS:
        problems.append(f"only {large_count} events stored after the load")
    if any(v <= 0 for samples in (*small.values(), *large.values()) for v in samples):
        problems.append("a request took no time")
    if problems:
        raise ImpossibleScaleResultError("; ".join(problems))
    for name in READS:
        p50 = (percentile(small[name], 50), percentile(large[name], 50))
        p95 = (percentile(small[name], 95), percentile(large[name], 95))
        result.figures.append(
            Figure(
                f"{name} p50 at {large_count:,} / at {small_count:,} events",
                ratio(p50[1], p50[0]),
                "x",
                TARGET,
                note=f"p50 {p50[0]:.2f} -> {p50[1]:.2f} ms, p95 {p95[0]:.2f} -> {p95[1]:.2f} ms",
            )
        )
        result.distributions[f"{name} at {small_count:,}"] = small[name]
        result.distributions[f"{name} at {large_count:,}"] = large[name]
    result.raw = {
        "stored_events": {"small": small_count, "large": large_count},
        "requests_per_read": requests,
        "load_seconds": round(load_seconds, 1),
    }
    return result
