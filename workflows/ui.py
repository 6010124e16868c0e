"""What a person sees of a task in the Temporal UI: pure formatting, no workflow APIs.

Search attribute values (only the changed ones are upserted: every upsert is a history
event), the markdown progress table of the workflow's current details, and the activity
summaries such as `M3/7 · execute · gpt-4o-mini · attempt 2`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

from workflows.dag import MilestoneState

with workflow.unsafe.imports_passed_through():
    from agent.contract.task import PauseState, Totals
    from agent.contract.waiting import WAITING_ON_PERSON, waiting_on_provider
    from agent.events.types import BreakpointKind, TaskStatus
    from agent.temporal import (
        AWAITING_HUMAN,
        COMPLEXITY,
        COST_USD,
        CURRENT_MILESTONE,
        TASK_STATUS,
        USER_ID,
        WAITING_ON,
    )

DETAILS_MAX_ROWS = 30
"""Rows of the markdown progress table shown in the Temporal UI."""

CURRENT_MILESTONE_MAX_CHARS = 250
"""`CurrentMilestone` is a keyword: the running keys are cut to this length."""

COST_DECIMALS = 6
"""`CostUsd` is rounded to this many decimals (a millionth of a dollar)."""

SEARCH_ATTRIBUTE_KEYS: dict[str, SearchAttributeKey[Any]] = {
    key.name: key
    for key in (
        TASK_STATUS,
        USER_ID,
        COMPLEXITY,
        AWAITING_HUMAN,
        COST_USD,
        CURRENT_MILESTONE,
        WAITING_ON,
    )
}
"""The task workflow's search attributes by name."""

_UNSET = object()


def changed_search_attributes(
    current: Mapping[str, Any], values: Mapping[str, Any]
) -> list[SearchAttributeUpdate[Any]]:
    """The updates of the `values` that differ from `current` (None unsets an attribute)."""
    updates: list[SearchAttributeUpdate[Any]] = []
    for name, value in values.items():
        if current.get(name, _UNSET) == value:
            continue
        key = SEARCH_ATTRIBUTE_KEYS[name]
        updates.append(unset_search_attribute(name) if value is None else key.value_set(value))
    return updates


def unset_search_attribute(name: str) -> SearchAttributeUpdate[Sequence[str]]:
    """The update that removes a search attribute, as a payload the Temporal UI can read.

    The SDK's `value_unset()` sends an empty `binary/null` payload, which the UI cannot
    parse as JSON (`Could not parse payload: Unexpected end of JSON input` on the upsert
    event). The server removes an attribute given either that payload or an empty list
    (`MergeMapOfPayload` compares the data only), and the empty list is the JSON `[]`. Only
    a keyword-list key may be set to a list, so the update names the attribute through one;
    the server keeps the attribute's registered type. The workflow's own view of the
    removed attribute (`workflow.info().typed_search_attributes`) is then an empty keyword
    list; the task workflow keeps its values in `_search_attributes` and never reads it.
    """
    return SearchAttributeKey.for_keyword_list(name).value_set([])


def cost_value(totals: Totals) -> float:
    """The `CostUsd` value of the task's totals."""
    return round(totals.cost_usd, COST_DECIMALS)


def current_milestone_value(running: Sequence[str]) -> str | None:
    """The `CurrentMilestone` value: the running keys in plan order, or None (unset)."""
    return ",".join(running)[:CURRENT_MILESTONE_MAX_CHARS] or None


def waiting_on_value(*, paused: bool, models: Sequence[str]) -> str | None:
    """The `WaitingOn` value: `person` when paused, else `llm:<model>` of the first wait."""
    if paused:
        return WAITING_ON_PERSON
    if models:
        return waiting_on_provider(models[0])
    return None


def details_markdown(
    status: TaskStatus,
    pause: PauseState | None,
    totals: Totals,
    ordered: Sequence[MilestoneState],
) -> str:
    """The workflow's current details: status, where it waits, usage, milestone table."""
    rows = [
        "| # | milestone | status | attempts |",
        "|---|---|---|---|",
    ]
    for index, m in enumerate(ordered[:DETAILS_MAX_ROWS], start=1):
        rows.append(f"| {index} | {m.key} | {m.status.value} | {m.attempts} |")
    if len(ordered) > DETAILS_MAX_ROWS:
        rows.append(f"| … | {len(ordered) - DETAILS_MAX_ROWS} more | | |")
    header = f"**{status.value}**"
    if pause is not None:
        header += f" at `{pause.breakpoint_id}`"
    header += f" · {totals.input_tokens}+{totals.output_tokens} tokens · ${totals.cost_usd:.4f}"
    return "\n".join([header, "", *rows])


def activity_summary(
    step: str, model: str, *, label: str | None = None, attempt: int | None = None
) -> str:
    """An LLM activity's summary such as `M3/7 · execute · gpt-4o-mini · attempt 2`."""
    parts = [label] if label is not None else []
    parts += [step, model]
    if attempt is not None:
        parts.append(f"attempt {attempt}")
    return " · ".join(parts)


def pause_summary(kind: BreakpointKind, milestone_key: str | None) -> str:
    """The `pause_task` activity's summary such as `pause · before_milestone · m2`."""
    return f"pause · {kind.value}" + (f" · {milestone_key}" if milestone_key else "")


def tool_summary(label: str, tool: str, attempt: int) -> str:
    """A tool call's summary such as `M2/4 · tool time.get_current_time · attempt 1`."""
    return f"{label} · tool {tool} · attempt {attempt}"
