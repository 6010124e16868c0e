"""Plan editing for clients: the plan as an editable document, and the edit between two plans."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from agent.client.models import MilestoneOut
from agent.contract.task import MilestoneChange, MilestoneSpec, PlanEdit


class PlanDocumentError(ValueError):
    """An edited plan document is not valid JSON of the expected shape."""


class PlanDocument(BaseModel):
    """The editable form of a plan: `{"milestones": [{key, title, description, depends_on}]}`."""

    milestones: list[MilestoneSpec] = Field(default_factory=list)


def plan_document(milestones: Sequence[MilestoneOut]) -> str:
    """Render a task's milestones as an indented JSON plan document to edit."""
    ordered = sorted(milestones, key=lambda m: m.position)
    doc = PlanDocument(
        milestones=[
            MilestoneSpec(
                key=m.key, title=m.title, description=m.description, depends_on=m.depends_on
            )
            for m in ordered
        ]
    )
    return json.dumps(doc.model_dump(mode="json"), indent=2) + "\n"


def parse_plan_document(text: str) -> PlanDocument:
    """Parse an edited plan document.

    Raises:
        PlanDocumentError: With the reason, when it is not a valid plan document.
    """
    try:
        return PlanDocument.model_validate_json(text)
    except ValidationError as exc:
        raise PlanDocumentError(str(exc)) from exc


def plan_edit_between(before: Sequence[MilestoneOut], after: PlanDocument) -> PlanEdit | None:
    """The `PlanEdit` that turns the current plan into the edited one; None when unchanged.

    Args:
        before: The task's current milestones.
        after: The edited plan document.

    Returns:
        Milestones to add, remove and change (only the fields that differ).
    """
    old = {m.key: m for m in before}
    new = {m.key: m for m in after.milestones}
    add = [spec for key, spec in new.items() if key not in old]
    remove = [key for key in old if key not in new]
    change: list[MilestoneChange] = []
    for key, spec in new.items():
        current = old.get(key)
        if current is None:
            continue
        fields: dict[str, Any] = {}
        if spec.title != current.title:
            fields["title"] = spec.title
        if spec.description != current.description:
            fields["description"] = spec.description
        if list(spec.depends_on) != list(current.depends_on):
            fields["depends_on"] = list(spec.depends_on)
        if fields:
            change.append(MilestoneChange(key=key, **fields))
    if not (add or remove or change):
        return None
    return PlanEdit(add=add, remove=remove, change=change)


def edit_summary(edits: PlanEdit) -> str:
    """One line for a person: `add m3; remove m2; change m1 title`."""
    parts: list[str] = []
    if edits.add:
        parts.append("add " + ", ".join(spec.key for spec in edits.add))
    if edits.remove:
        parts.append("remove " + ", ".join(edits.remove))
    for change in edits.change:
        fields = [
            f for f in ("title", "description", "depends_on") if getattr(change, f) is not None
        ]
        parts.append(f"change {change.key} {'/'.join(fields)}".rstrip())
    return "; ".join(parts) or "no change"
