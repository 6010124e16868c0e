"""Temporal UI legibility: search attributes, the progress table, activity summaries."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

from workflows.state import WorkflowState

with workflow.unsafe.imports_passed_through():
    from agent.events.types import AgentRole
    from agent.temporal import (
        AWAITING_HUMAN,
        COMPLEXITY,
        COST_USD,
        CURRENT_MILESTONE,
        TASK_STATUS,
        USER_ID,
    )

DETAILS_MAX_ROWS = 30
"""Rows of the markdown progress table shown in the Temporal UI."""

CURRENT_MILESTONE_MAX_CHARS = 250
"""`CurrentMilestone` is a keyword: the running keys are cut to this length."""

_SEARCH_ATTRIBUTE_KEYS: dict[str, SearchAttributeKey[Any]] = {
    key.name: key
    for key in (TASK_STATUS, USER_ID, COMPLEXITY, AWAITING_HUMAN, COST_USD, CURRENT_MILESTONE)
}

_UNSET = object()


class WorkflowUi(WorkflowState):
    """What a person sees of the task in the Temporal UI."""

    def _summary(
        self, step: str, role: AgentRole, attempt: int | None = None, key: str | None = None
    ) -> str:
        """An activity summary such as `M3/7 · execute · gpt-4o-mini · attempt 2`."""
        parts = [self._label(key)] if key is not None else []
        parts += [step, self._routes[role].model if role in self._routes else role.value]
        if attempt is not None:
            parts.append(f"attempt {attempt}")
        return " · ".join(parts)

    def _update_current(self) -> None:
        current = [k for k in self._plan_keys() if k in self._running]
        value = ",".join(current)[:CURRENT_MILESTONE_MAX_CHARS] or None
        self._upsert({CURRENT_MILESTONE.name: value})
        self._refresh_details()

    def _upsert_cost(self) -> None:
        self._upsert({COST_USD.name: round(self._totals.cost_usd, 6)})

    def _upsert(self, values: dict[str, Any]) -> None:
        # Only changed values: every upsert is a history event.
        updates: list[SearchAttributeUpdate[Any]] = []
        for name, value in values.items():
            if self._search_attributes.get(name, _UNSET) == value:
                continue
            self._search_attributes[name] = value
            key = _SEARCH_ATTRIBUTE_KEYS[name]
            updates.append(key.value_unset() if value is None else key.value_set(value))
        if updates:
            workflow.upsert_search_attributes(updates)

    def _refresh_details(self) -> None:
        rows = [
            "| # | milestone | status | attempts |",
            "|---|---|---|---|",
        ]
        ordered = self._ordered()
        for index, m in enumerate(ordered[:DETAILS_MAX_ROWS], start=1):
            rows.append(f"| {index} | {m.key} | {m.status.value} | {m.attempts} |")
        if len(ordered) > DETAILS_MAX_ROWS:
            rows.append(f"| … | {len(ordered) - DETAILS_MAX_ROWS} more | | |")
        header = f"**{self._status.value}**"
        if self._pause is not None:
            header += f" at `{self._pause.breakpoint_id}`"
        totals = self._totals
        header += f" · {totals.input_tokens}+{totals.output_tokens} tokens · ${totals.cost_usd:.4f}"
        workflow.set_current_details("\n".join([header, "", *rows]))
