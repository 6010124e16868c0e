"""Texts of the task events a person reads: the decision at a breakpoint, the result preview."""

from __future__ import annotations

from agent.contract.task import ResumeRequest

RESULT_PREVIEW_CHARS = 500
"""How much of the result the terminal event carries (`details.result_preview`)."""


def result_preview(result: str | None) -> str | None:
    """The start of a task's result for its terminal event; None when there is none."""
    if not result:
        return None
    if len(result) <= RESULT_PREVIEW_CHARS:
        return result
    return result[: RESULT_PREVIEW_CHARS - 1].rstrip() + "…"


def decision_text(request: ResumeRequest) -> str:
    """What a person decided, e.g. `continue (edit: add m3; remove m2; change m1 title)`."""
    edits: list[str] = []
    if request.edits is not None:
        if request.edits.add:
            edits.append("add " + ", ".join(spec.key for spec in request.edits.add))
        if request.edits.remove:
            edits.append("remove " + ", ".join(request.edits.remove))
        for change in request.edits.change:
            fields = [
                f for f in ("title", "description", "depends_on") if getattr(change, f) is not None
            ]
            edits.append(" ".join([f"change {change.key}", "/".join(fields)]).rstrip())
    notes = [f"edit: {'; '.join(edits)}"] if edits else []
    if request.budget is not None:
        notes.append("new budget")
    if request.feedback:
        notes.append("with feedback")
    return request.action.value + (f" ({'; '.join(notes)})" if notes else "")
