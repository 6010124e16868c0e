"""Scenario 4: event relay latency, commit -> WebSocket client.

Persisted events are appended with `EventRepository.append` (one transaction each, the
production path with its row lock and NOTIFY) at a fixed rate by an open-loop generator
(each append starts on schedule, whether or not the previous one has committed), while
WebSocket clients in another process follow the task's socket. Latency = receipt time -
the time just before COMMIT (same host clock), exactly as the bare anchor measures: the
time the commit *returned* lags the real commit under load (the listener may even receive
the event first), so it would understate latency. For scale, the same volume goes through
a bare PostgreSQL row + NOTIFY to an asyncpg listener, and through
`temporalio.contrib.workflow_streams` (publish -> subscriber receipt) at two batch
intervals. Targets: p99 <= 10 ms at 200 events/s, <= 25 ms at 1000 events/s.

The scenario fails (no figure, no "met") when its own numbers are impossible: a negative
latency, an achieved rate below `MIN_ACHIEVED_SHARE` of the requested one, or an event a
client never received. After each rate, bare row+NOTIFY transactions from 20 writers as
fast as they go measure what the database and disk allow at that moment (notifying
commits are serialised by PostgreSQL through their WAL flush); a rate failure names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from agent.events.types import AgentActivityEvent, EventType, TaskStatus
from agent.repositories.events import EventDraft, EventRepository
from agent.repositories.tasks import TaskRepository
from bench.bare_workflow import StreamBenchInput, StreamBenchWorkflow
from bench.harness import Bench
from bench.model import Figure, ScenarioResult, at_most, percentile, ratio

TARGETS = {200: at_most(10.0), 1000: at_most(25.0)}
MAX_RATE_PER_TASK = 50
"""Appends per second asked of one task: appends to one task serialise on its row lock
(gapless sequence numbers), so higher rates are spread over several tasks (events go to
them in turn) and the clients are spread evenly over those tasks' sockets."""
SETTLE_SECONDS = 0.5
NOTIFY_CHANNEL = "bench_notify"
STREAM_SUBSCRIBERS = 5
STREAM_TOPIC = "events"
STREAM_DRAIN_SECONDS = 3.0
NS_PER_MS = 1_000_000
CAPACITY_WRITERS = 20
CAPACITY_SECONDS = 1.0
MIN_ACHIEVED_SHARE = 0.95
"""A run that reached less than this share of its requested rate did not measure that rate."""


class ImpossibleRelayResultError(RuntimeError):
    """The relay's own numbers cannot be right, so it reports no figure at all."""


def check_possible(
    run_: dict[str, Any], latencies: list[float], capacity: float | None = None
) -> list[str]:
    """What makes one relay run's numbers impossible (empty when they hold).

    Args:
        run_: The run's figures (`rate`, `achieved_rate`, `missing_deliveries`, and the
            append latency when measured).
        latencies: Its relay latencies in ms.
        capacity: Bare row+NOTIFY commits/s this database reached meanwhile, named in a
            rate failure so that it says whether the database or the path fell short.
    """
    problems = []
    rate = run_["rate"]
    if latencies and min(latencies) < 0:
        problems.append(f"{rate}/s: negative latency {min(latencies):.2f} ms")
    if run_["achieved_rate"] < MIN_ACHIEVED_SHARE * rate:
        why = [f"< {MIN_ACHIEVED_SHARE:.0%} of the requested rate"]
        if run_.get("append_p99_ms") is not None:
            why.append(
                f"append p50 {run_.get('append_p50_ms')} ms, p99 {run_['append_p99_ms']} ms "
                "from its scheduled start to COMMIT"
            )
        if capacity is not None:
            why.append(
                f"bare row+NOTIFY capacity of this database {capacity:.0f}/s "
                f"with {CAPACITY_WRITERS} writers"
            )
        problems.append(f"{rate}/s: achieved only {run_['achieved_rate']}/s ({'; '.join(why)})")
    if run_["missing_deliveries"]:
        problems.append(f"{rate}/s: {run_['missing_deliveries']} deliveries missing")
    return problems


async def _new_task(bench: Bench, label: str) -> str:
    async with bench.clients.db.session() as session, session.begin():
        task = await TaskRepository(session).create(
            user_id=bench.clients.user_id, goal=f"bench relay {label}", status=TaskStatus.RUNNING
        )
        return str(task.id)


async def _produce(
    bench: Bench, task_ids: list[str], rate: int, seconds: float
) -> tuple[dict[tuple[str, int], int], float, list[float]]:
    """Append events at `rate`/s over the tasks.

    Returns:
        Pre-commit times by (task, seq), the achieved rate, and each append's time in ms
        from its scheduled start to just before COMMIT.

    An open-loop generator: event `i` starts at `start + i / rate` whether or not the
    earlier ones have committed (each append is its own coroutine, in its own session and
    transaction), so a slow commit delays only itself and the achieved rate measures the
    append path, not a producer waiting for its previous round trip. Appends to one task
    still serialise on its row lock inside PostgreSQL.
    """
    before_commit: dict[tuple[str, int], int] = {}
    append_ms: list[float] = []
    total = int(rate * seconds)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def append_one(i: int) -> None:
        task_id = task_ids[i % len(task_ids)]
        draft = EventDraft(
            idempotency_key=f"bench:{i}",
            event=AgentActivityEvent(
                type=EventType.TASK_PROGRESS,
                task_id=uuid.UUID(task_id),
                message="bench",
                details={"i": i},
            ),
        )
        async with bench.clients.db.session() as session, session.begin():
            stored = await EventRepository(session).append([draft])
            # Leaving the block commits: this is the time just before COMMIT.
            commit_ns = time.time_ns()
            append_ms.append((loop.time() - start - i / rate) * 1000)
        seq = stored[0].sequence_number
        assert seq is not None
        before_commit[(task_id, seq)] = commit_ns

    began = loop.time()
    appends: list[asyncio.Task[None]] = []
    for i in range(total):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        appends.append(asyncio.create_task(append_one(i)))
    await asyncio.gather(*appends)
    achieved = total / max(1e-9, loop.time() - began)
    return before_commit, achieved, append_ms


async def _relay(bench: Bench, rate: int, clients: int, seconds: float) -> dict[str, Any]:
    n_tasks = max(1, math.ceil(rate / MAX_RATE_PER_TASK))
    task_ids = [await _new_task(bench, f"{rate}/s #{i}") for i in range(n_tasks)]
    spec = {
        "api_url": bench.stack.info.api_url,
        "api_key": bench.stack.info.api_key,
        "task_ids": task_ids,
        "clients_per_task": max(1, clients // n_tasks),
    }
    async with bench.helper("bench.ws_clients", spec, wait_ready=True) as handle:
        committed, achieved, append_ms = await _produce(bench, task_ids, rate, seconds)
        await asyncio.sleep(SETTLE_SECONDS)
    latencies: list[float] = []
    missing = 0
    for socket in handle.result["sockets"]:
        seen = set()
        for row in socket["rows"]:
            if row[0] != "e":
                continue
            key, recv_ns = (socket["task_id"], row[1]), row[4]
            if key in committed:
                seen.add(key)
                latencies.append((recv_ns - committed[key]) / NS_PER_MS)
        missing += sum(1 for k in committed if k[0] == socket["task_id"]) - len(seen)
    return {
        "rate": rate,
        "achieved_rate": round(achieved, 1),
        "append_p50_ms": _p(append_ms, 50),
        "append_p99_ms": _p(append_ms, 99),
        "tasks": n_tasks,
        "clients": max(1, clients // n_tasks) * n_tasks,
        "events": len(committed),
        "deliveries": len(latencies),
        "missing_deliveries": missing,
        "latencies": latencies,
    }


async def _pg_notify_baseline(bench: Bench, rate: int, seconds: float) -> list[float]:
    """A bare row + NOTIFY per transaction, received by an asyncpg listener."""
    dsn = bench.stack.info.database_url
    writer = await asyncpg.connect(dsn)
    listener = await asyncpg.connect(dsn)
    received: dict[int, int] = {}

    def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        received[int(payload)] = time.time_ns()

    try:
        await writer.execute(
            "CREATE TABLE IF NOT EXISTS bench_notify (id bigserial PRIMARY KEY, body jsonb)"
        )
        await listener.add_listener(NOTIFY_CHANNEL, on_notify)
        committed: dict[int, int] = {}
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        for i in range(int(rate * seconds)):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            transaction = writer.transaction()
            await transaction.start()
            await writer.execute(
                "INSERT INTO bench_notify (body) VALUES ($1::jsonb)", json.dumps({"i": i})
            )
            await writer.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(i))
            # Measured from just before COMMIT: the listener shares this event loop, so
            # the commit's return and the notification arrive in the same loop turn.
            committed[i] = time.time_ns()
            await transaction.commit()
        await asyncio.sleep(SETTLE_SECONDS)
        return [(received[i] - t) / NS_PER_MS for i, t in committed.items() if i in received]
    finally:
        with contextlib.suppress(Exception):
            await listener.remove_listener(NOTIFY_CHANNEL, on_notify)
        await listener.close()
        await writer.close()


async def _pg_notify_capacity(bench: Bench, seconds: float) -> float:
    """Bare row + NOTIFY commits/s with `CAPACITY_WRITERS` writers as fast as they go.

    PostgreSQL serialises the commits of notifying transactions (a global lock held
    through the commit's WAL flush), so this is the ceiling of any one-event-per-
    transaction rate on this database and disk, whatever the code above it.
    """
    dsn = bench.stack.info.database_url
    writers = [await asyncpg.connect(dsn) for _ in range(CAPACITY_WRITERS)]
    count = 0
    try:
        await writers[0].execute(
            "CREATE TABLE IF NOT EXISTS bench_notify (id bigserial PRIMARY KEY, body jsonb)"
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds

        async def write(conn: asyncpg.Connection) -> None:
            nonlocal count
            while loop.time() < deadline:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO bench_notify (body) VALUES ($1::jsonb)", json.dumps({"i": 0})
                    )
                    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, "capacity")
                count += 1

        began = loop.time()
        await asyncio.gather(*(write(conn) for conn in writers))
        return count / max(1e-9, loop.time() - began)
    finally:
        for conn in writers:
            await conn.close()


async def _workflow_streams(
    bench: Bench, rate: int, seconds: float, batch_ms: int
) -> dict[str, Any]:
    """Publish at `rate` through a Workflow Stream; subscribers measure publish -> receipt."""
    client = bench.clients.temporal
    workflow_id = f"bench-stream-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        StreamBenchWorkflow.run,
        StreamBenchInput(),
        id=workflow_id,
        task_queue=bench.bare_queue,
    )
    total = int(rate * seconds)
    latencies: list[float] = []
    counts = [0] * STREAM_SUBSCRIBERS

    async def subscriber(index: int) -> None:
        reader = WorkflowStreamClient.create(client, workflow_id)
        async for item in reader.subscribe(STREAM_TOPIC, from_offset=0):
            now = time.time_ns()
            latencies.append((now - int(item.data["t"])) / NS_PER_MS)
            counts[index] += 1
            if counts[index] >= total:
                return

    subscribers = [asyncio.create_task(subscriber(i)) for i in range(STREAM_SUBSCRIBERS)]
    publisher = WorkflowStreamClient.create(
        client, workflow_id, batch_interval=timedelta(milliseconds=batch_ms)
    )
    loop = asyncio.get_running_loop()
    async with publisher:
        topic = publisher.topic(STREAM_TOPIC)
        start = loop.time() + 0.05
        for i in range(total):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            topic.publish({"i": i, "t": time.time_ns()})
    _done, pending = await asyncio.wait(subscribers, timeout=STREAM_DRAIN_SECONDS + seconds)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await handle.signal(StreamBenchWorkflow.finish)
    return {
        "batch_ms": batch_ms,
        "rate": rate,
        "subscribers": STREAM_SUBSCRIBERS,
        "events": total,
        "deliveries": len(latencies),
        "missing_deliveries": total * STREAM_SUBSCRIBERS - len(latencies),
        "latencies": latencies,
    }


def _p(values: list[float], pct: float) -> float | None:
    return round(percentile(values, pct), 2) if values else None


async def run(bench: Bench) -> ScenarioResult:
    """Relay at each rate, the bare NOTIFY baseline and Workflow Streams."""
    params = bench.params
    seconds = params.relay_seconds
    result = ScenarioResult("relay", "4. Event relay latency (before COMMIT -> WebSocket receipt)")
    base_rate = params.relay_rates[0][0]
    notify = await _pg_notify_baseline(bench, base_rate, seconds)
    notify_p99 = _p(notify, 99)
    result.distributions[f"bare row+NOTIFY {base_rate}/s"] = notify
    result.raw["bare_notify"] = {"rate": base_rate, "p50": _p(notify, 50), "p99": notify_p99}
    relay_p99: dict[int, float | None] = {}
    problems: list[str] = []
    for rate, clients in params.relay_rates:
        run_ = await _relay(bench, rate, clients, seconds)
        # Right after the run, in the same conditions: what the database itself allows.
        capacity = await _pg_notify_capacity(bench, CAPACITY_SECONDS)
        run_["bare_notify_capacity"] = round(capacity, 1)
        lat = run_.pop("latencies")
        problems += check_possible(run_, lat, capacity)
        p50, p99 = _p(lat, 50), _p(lat, 99)
        relay_p99[rate] = p99
        result.distributions[f"relay {rate}/s x{clients}"] = lat
        result.figures.append(
            Figure(
                f"relay {rate}/s, {clients} clients: p99",
                p99,
                "ms",
                TARGETS.get(rate),
                note=f"p50 {p50} ms; achieved {run_['achieved_rate']}/s over "
                f"{run_['tasks']} task(s) (bare row+NOTIFY capacity {capacity:.0f}/s); "
                f"missing {run_['missing_deliveries']}",
            )
        )
        run_.update(
            {"p50": p50, "p95": _p(lat, 95), "p99": p99, "min": _p(lat, 0), "max": _p(lat, 100)}
        )
        result.raw[f"relay_{rate}"] = run_
    if notify and min(notify) < 0:
        problems.append(f"bare NOTIFY: negative latency {min(notify):.2f} ms")
    if problems:
        raise ImpossibleRelayResultError("; ".join(problems))
    if relay_p99.get(base_rate) is not None and notify_p99:
        result.figures.append(
            Figure(
                f"relay p99 / bare row+NOTIFY p99 ({base_rate}/s, both from before COMMIT)",
                ratio(relay_p99[base_rate] or 0.0, notify_p99),
                "x",
                note=f"bare NOTIFY p50 {_p(notify, 50)} ms, p99 {notify_p99} ms",
            )
        )
    for batch_ms in params.streams_batch_ms:
        streams = await _workflow_streams(bench, base_rate, seconds, batch_ms)
        lat = streams.pop("latencies")
        p50, p99 = _p(lat, 50), _p(lat, 99)
        streams.update({"p50": p50, "p95": _p(lat, 95), "p99": p99})
        result.raw[f"workflow_streams_{batch_ms}ms"] = streams
        result.distributions[f"workflow streams {batch_ms} ms batch"] = lat
        relay = relay_p99.get(base_rate)
        result.figures.append(
            Figure(
                f"Workflow Streams {batch_ms} ms batch ({base_rate}/s): p99",
                p99,
                "ms",
                note=f"p50 {p50} ms; relay p99 / streams p99 = "
                + (f"{relay / p99:.3f}" if relay is not None and p99 else "n/a"),
            )
        )
    return result
