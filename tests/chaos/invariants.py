"""The invariants every chaos scenario checks on every task it ran.

1. The task is terminal, with the status (and reason, and milestone outcomes) of a
   fault-free run of the same goal.
2. Its stored events have sequence numbers 1..N without gaps and no idempotency key twice.
3. Every client's received log equals the stored log (same sequence numbers, same events,
   in order, nothing twice); so does the REST view read page by page.
4. Milestone outputs are written once: one worker `LLM_COMPLETE` per milestone attempt
   (turns of a tool-using attempt that asked for tool calls aside: they are no output),
   and a passed milestone's output is the text of its last attempt's `LLM_COMPLETE`.
5. Cost and token totals equal the sum of the usage the events report: `LLM_COMPLETE`
   plus the partial usage of `AGENT_FAILED` (a stream cut half-way was still billed).
6. No workflow history holds an LLM output (claim-check) and none has more than 10% of
   Temporal's history event-count warning.
7. Nothing served goes unbilled: the totals are at least the tokens the simulator served
   the task, less, for each completion that no committed `LLM_COMPLETE` accounts for,
   what its attempt may have received after its last heartbeat reached Temporal (a
   worker killed mid-call leaves its usage only in its heartbeats; see
   `served_allowance`).
"""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from activities.models import PREVIEW_CHARS, ExecuteOutcome
from activities.policies import CHUNK_FLUSH_INTERVAL_SECONDS
from agent.db.models import Event, Milestone, Task
from agent.events.types import AgentRole, EventType, TaskStatus
from agent.llm.simulator.completion import UNLIMITED_TPS_BATCH_TOKENS
from agent.worker import MAX_HEARTBEAT_THROTTLE
from tests.chaos.clients import Follower
from tests.chaos.harness import Cluster

HISTORY_COUNT_WARN = 10_240
"""Temporal's default `limit.historyCount.warn`."""
HISTORY_EVENT_LIMIT = HISTORY_COUNT_WARN // 10
CLAIM_CHECK_ROLES = frozenset({AgentRole.WORKER, AgentRole.SUMMARISER, AgentRole.COMPRESSOR})
SNIPPET_CHARS = 48
COST_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Outcome:
    """What a run of a goal ended with, comparable across runs of the same template."""

    status: TaskStatus
    failure_reason: str | None
    milestones: tuple[tuple[str, str], ...]


@dataclass
class Report:
    """Counts of one scenario and every invariant violation found."""

    name: str
    tasks: int = 0
    completed: int = 0
    stored: int = 0
    received: int = 0
    gaps: int = 0
    duplicates: int = 0
    recorded_tokens: int = 0
    """Tokens the tasks' rows bill, over every task the simulator served."""
    served_tokens: int = 0
    """Tokens the simulator's own ledger says it served to those tasks."""
    violations: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The scenario line the issue asks for."""
        return (
            f"{self.name}: tasks {self.tasks}, completed {self.completed}, "
            f"events stored {self.stored}, received {self.received}, "
            f"gaps {self.gaps}, duplicates {self.duplicates}, "
            f"tokens recorded {self.recorded_tokens}, served {self.served_tokens}"
        )


async def outcome_of(cluster: Cluster, task_id: uuid.UUID) -> Outcome:
    """Read a task's outcome from the database."""
    async with cluster.db().session() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        rows = (
            await session.execute(select(Milestone).where(Milestone.task_id == task_id))
        ).scalars()
        milestones = tuple(sorted((m.key, str(m.status)) for m in rows))
        return Outcome(TaskStatus(task.status), task.failure_reason, milestones)


REST_PAGE_SIZE = 37


def served_allowance(tps: float) -> int:
    """Tokens a completion may have been served that its attempt could not bill.

    A completion either ends in a committed `LLM_COMPLETE` (billed exactly) or its
    attempt bills what it knows: its own `AGENT_FAILED`, or, when its worker died, the
    usage of its last heartbeat. The attempt heartbeats its running usage with every
    chunk batch, but the SDK sends a heartbeat to Temporal at most once per
    `MAX_HEARTBEAT_THROTTLE` (the first one, which carries the prompt, at once): a worker
    killed in between loses what it received since, plus the batch it had not flushed.
    """
    if tps <= 0:
        return UNLIMITED_TPS_BATCH_TOKENS
    window = MAX_HEARTBEAT_THROTTLE.total_seconds() + CHUNK_FLUSH_INTERVAL_SECONDS
    return math.ceil(tps * window)


async def _served(cluster: Cluster) -> dict[str, dict[str, int]]:
    """Tokens the simulator served, per task id (`GET /sim/served`)."""
    async with httpx.AsyncClient(base_url=cluster.sim_url, timeout=30.0) as http:
        response = await http.get("/sim/served")
        response.raise_for_status()
        served: dict[str, dict[str, int]] = response.json()
        return served


async def _rest_log(cluster: Cluster, task_id: uuid.UUID) -> list[tuple[int, str, str]]:
    """The task's events through `GET /v1/tasks/{id}/events` with its owner's key, page by page."""
    async with cluster.db().session() as session:
        owner = await session.scalar(select(Task.user_id).where(Task.id == task_id))
    key = next(user.key for user in cluster.users if user.user_id == owner)
    log: list[tuple[int, str, str]] = []
    after = 0
    async with httpx.AsyncClient(
        base_url=cluster.api_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30.0,
    ) as http:
        while True:
            response = await http.get(
                f"/v1/tasks/{task_id}/events",
                params={"after_seq": after, "limit": REST_PAGE_SIZE},
            )
            response.raise_for_status()
            page = response.json()
            log += [(e["sequence_number"], e["type"], e["message"]) for e in page["items"]]
            if not page["has_more"]:
                return log
            after = page["next_after_seq"]


def _snippet(text: str) -> str | None:
    """A piece of an output beyond what a preview may carry, free of JSON escapes."""
    body = text.strip()
    if len(body) < PREVIEW_CHARS + SNIPPET_CHARS + 8:
        return None
    tail = body[PREVIEW_CHARS + 4 :]
    for line in tail.splitlines():
        clean = line.strip()
        if len(clean) >= SNIPPET_CHARS and all(c not in clean for c in '"\\'):
            return clean[:SNIPPET_CHARS]
    return None


def _asked_for_tools(event: Event) -> bool:
    """Whether a worker's `LLM_COMPLETE` is a turn that asked for tool calls."""
    result = event.details.get("result")
    return isinstance(result, dict) and result.get("outcome") == ExecuteOutcome.TOOL_CALLS


async def check(
    cluster: Cluster,
    name: str,
    task_ids: list[uuid.UUID],
    expected: dict[uuid.UUID, Outcome],
    followers: list[Follower] | None = None,
) -> Report:
    """Check every invariant on every task; return the counts and the violations."""
    report = Report(name, tasks=len(task_ids))
    by_task: dict[uuid.UUID, list[Follower]] = defaultdict(list)
    for follower in followers or []:
        by_task[follower.task_id].append(follower)
    client = await cluster.temporal()
    served_by_task = await _served(cluster)
    allowance = served_allowance(cluster.sim_options.tps)
    for task_id in task_ids:
        v = report.violations
        async with cluster.db().session() as session:
            task = await session.get(Task, task_id)
            assert task is not None
            events = list(
                (
                    await session.execute(
                        select(Event)
                        .where(Event.task_id == task_id)
                        .order_by(Event.sequence_number, Event.id)
                    )
                ).scalars()
            )
            milestones = list(
                (await session.execute(select(Milestone).where(Milestone.task_id == task_id)))
                .scalars()
                .all()
            )
        status = TaskStatus(task.status)
        if status == TaskStatus.COMPLETED:
            report.completed += 1

        # 1. Terminal, like the fault-free run.
        got = await outcome_of(cluster, task_id)
        want = expected.get(task_id)
        if not status.is_terminal:
            v.append(f"{task_id}: not terminal ({status})")
        if want is not None and got != want:
            v.append(f"{task_id}: outcome {got} differs from the fault-free {want}")

        # 2. Gapless, no duplicate keys.
        seqs = [e.sequence_number for e in events]
        report.stored += len(events)
        gaps = sorted(set(range(1, max(seqs, default=0) + 1)) - set(seqs))
        dup_seqs = [s for s, n in Counter(seqs).items() if n > 1]
        dup_keys = [k for k, n in Counter(e.idempotency_key for e in events).items() if n > 1]
        report.gaps += len(gaps)
        report.duplicates += len(dup_seqs) + len(dup_keys)
        if gaps or dup_seqs or dup_keys:
            v.append(
                f"{task_id}: gaps {gaps[:5]}, duplicate seqs {dup_seqs[:5]}, keys {dup_keys[:3]}"
            )
        if task.last_event_seq != len(events):
            v.append(f"{task_id}: last_event_seq {task.last_event_seq} but {len(events)} events")

        # 3. Clients received exactly the stored log.
        stored_log = [(e.sequence_number, e.type, e.message) for e in events]
        for follower in by_task.get(task_id, []):
            received = [
                (int(e["sequence_number"]), e["type"], e["message"]) for e in follower.events
            ]
            report.received += len(received)
            recv_dups = len(received) - len({r[0] for r in received})
            report.duplicates += recv_dups
            if received != stored_log:
                missing = sorted({s[0] for s in stored_log} - {r[0] for r in received})
                report.gaps += len(missing)
                v.append(
                    f"{task_id}: client log differs from stored "
                    f"(received {len(received)}, stored {len(stored_log)}, "
                    f"missing {missing[:5]}, duplicates {recv_dups})"
                )

        # 3b. The REST view of the log, read in odd-sized pages, is the same log.
        rest_log = await _rest_log(cluster, task_id)
        if rest_log != stored_log:
            v.append(f"{task_id}: REST pages ({len(rest_log)}) differ from the stored log")

        # 4. Milestone outputs written once.
        worker_completes: dict[tuple[str, int], list[Event]] = defaultdict(list)
        for e in events:
            if e.type == EventType.LLM_COMPLETE and e.agent == AgentRole.WORKER:
                if _asked_for_tools(e):
                    continue  # a turn of a tool-using attempt, not its output
                worker_completes[(str(e.details.get("key")), int(e.details["attempt"]))].append(e)
        for (key, attempt), items in worker_completes.items():
            if len(items) != 1:
                v.append(
                    f"{task_id}: milestone {key} attempt {attempt} output written {len(items)}x"
                )
        for m in milestones:
            if m.status == "passed":
                items = worker_completes.get((m.key, m.output_attempt or m.attempts), [])
                if not items or items[0].details.get("text") != m.output:
                    v.append(f"{task_id}: milestone {m.key} output is not its LLM_COMPLETE text")

        # 5. Totals equal the events' usage.
        inp = out = 0
        cost = 0.0
        per_milestone: dict[uuid.UUID, list[float]] = defaultdict(lambda: [0, 0, 0.0])
        for e in events:
            usage: dict[str, Any] | None = None
            if e.type == EventType.LLM_COMPLETE:
                usage = e.details.get("usage")
            elif e.type == EventType.AGENT_FAILED:
                usage = e.details.get("partial_usage")
            if not usage:
                continue
            inp += int(usage["input_tokens"])
            out += int(usage["output_tokens"])
            cost += float(usage.get("cost_usd") or 0.0)
            if e.milestone_id is not None:
                acc = per_milestone[e.milestone_id]
                acc[0] += int(usage["input_tokens"])
                acc[1] += int(usage["output_tokens"])
                acc[2] += float(usage.get("cost_usd") or 0.0)
        if (task.input_tokens, task.output_tokens) != (inp, out) or not math.isclose(
            task.cost_usd, cost, rel_tol=COST_TOLERANCE, abs_tol=COST_TOLERANCE
        ):
            v.append(
                f"{task_id}: totals {task.input_tokens}/{task.output_tokens}/{task.cost_usd} "
                f"!= events {inp}/{out}/{cost}"
            )
        for m in milestones:
            acc = per_milestone.get(m.id, [0, 0, 0.0])
            if (m.input_tokens, m.output_tokens) != (acc[0], acc[1]) or not math.isclose(
                m.cost_usd, acc[2], rel_tol=COST_TOLERANCE, abs_tol=COST_TOLERANCE
            ):
                v.append(f"{task_id}: milestone {m.key} totals differ from its events")

        # 7. Every served token is billed, but for what a killed attempt could not report.
        served = served_by_task.get(str(task_id))
        if served is None and any(e.type == EventType.LLM_COMPLETE for e in events):
            v.append(f"{task_id}: billed LLM calls the simulator's ledger never served")
        if served is not None:
            served_tokens = served["input_tokens"] + served["output_tokens"]
            recorded_tokens = task.input_tokens + task.output_tokens
            report.recorded_tokens += recorded_tokens
            report.served_tokens += served_tokens
            committed = sum(1 for e in events if e.type == EventType.LLM_COMPLETE)
            uncommitted = max(0, served["completions"] - committed)
            slack = uncommitted * allowance
            if recorded_tokens < served_tokens - slack:
                v.append(
                    f"{task_id}: billed {recorded_tokens} tokens but served {served_tokens} "
                    f"({uncommitted} completions without LLM_COMPLETE, {slack} allowed)"
                )

        # 6. Claim-check and history size.
        history = await client.get_workflow_handle(task.workflow_id).fetch_history()
        raw = b"".join(event.SerializeToString() for event in history.events)
        if len(history.events) > HISTORY_EVENT_LIMIT:
            v.append(f"{task_id}: history has {len(history.events)} events")
        for e in events:
            if e.type != EventType.LLM_COMPLETE or e.agent not in CLAIM_CHECK_ROLES:
                continue
            snippet = _snippet(str(e.details.get("text", "")))
            if snippet is not None and snippet.encode() in raw:
                v.append(f"{task_id}: workflow history holds {e.agent} output ({snippet!r})")
                break
    return report
