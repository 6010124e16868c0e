"""The live view folds waiting and usage provenance out of the events."""

from __future__ import annotations

from uuid import UUID, uuid4

from rich.console import Console

from agent.cli.live import header
from agent.cli.render import tokens_text, waiting_text
from agent.client.view import TaskView
from agent.contract.task import Totals
from agent.events.types import AgentActivityEvent, AgentRole, EventType, TaskStatus


def view() -> TaskView:
    return TaskView(
        task_id=uuid4(),
        goal="Plan a shed",
        status=TaskStatus.RUNNING,
        workflow_id="task-x",
        totals=Totals(),
        snapshot_seq=0,
    )


def event(task_id: UUID, seq: int, type_: EventType, **details: object) -> AgentActivityEvent:
    return AgentActivityEvent(
        type=type_,
        task_id=task_id,
        sequence_number=seq,
        agent=AgentRole.WORKER,
        details={"key": "m1", **details},
    )


def test_waiting_shows_from_llm_waiting_until_llm_recovered() -> None:
    task = view()
    task.apply(
        event(
            task.task_id,
            1,
            EventType.LLM_WAITING,
            model="gpt-4o-mini",
            since="2026-12-01T10:00:01+00:00",
            next_try_at="2026-12-01T10:00:09+00:00",
            last_error="LLM provider answered 503",
        )
    )
    shown = [waiting_text(w) for w in task.waiting.values()]
    console = Console(width=200, record=True)
    console.print(header(task, None))
    task.apply(event(task.task_id, 2, EventType.LLM_RECOVERED, model="gpt-4o-mini"))

    assert shown == [
        "waiting on provider gpt-4o-mini since 10:00:01 UTC, next try at 10:00:09 UTC, "
        "last error: LLM provider answered 503"
    ]
    assert "waiting on provider gpt-4o-mini since 10:00:01 UTC" in console.export_text()
    assert task.waiting == {}


def test_estimated_usage_marks_the_totals() -> None:
    task = view()
    usage = {"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.0}

    task.apply(event(task.task_id, 1, EventType.LLM_COMPLETE, usage=usage))
    before = tokens_text(task.totals)
    task.apply(
        event(task.task_id, 2, EventType.LLM_COMPLETE, usage={**usage, "usage_source": "estimated"})
    )

    assert before == "10 in / 5 out tokens"
    assert tokens_text(task.totals) == "20 in / 10 out tokens (some estimated)"
