"""Reading a workflow's history across its runs."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import Client, WorkflowHistory

CONTINUED = HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW


async def runs_of(client: Client, workflow_id: str, first_run_id: str) -> list[WorkflowHistory]:
    """Every run's history of a workflow, first to last, following continue-as-new."""
    histories: list[WorkflowHistory] = []
    run_id: str | None = first_run_id
    while run_id is not None:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        run_id = None
        if last.event_type == CONTINUED:
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return histories
