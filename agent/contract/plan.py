"""Pure plan logic: validation, parsing, edits and DAG scheduling of milestones.

No Temporal, no I/O: the planning activity, the workflow and the resume validator all use
the same rules, so an edited plan is checked exactly like a generated one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, Field, ValidationError, model_validator

from agent.contract.task import (
    MAX_MILESTONES,
    PLAN_MILESTONES_CEILING,
    MilestoneChange,
    MilestoneSpec,
    PlanEdit,
)
from agent.events.types import MilestoneStatus

MIN_MILESTONES = 1

DONE_STATUSES: frozenset[MilestoneStatus] = frozenset(
    {MilestoneStatus.PASSED, MilestoneStatus.SKIPPED}
)
"""Statuses that satisfy a dependency."""

LOCKED_STATUSES: frozenset[MilestoneStatus] = frozenset(
    {MilestoneStatus.IN_PROGRESS, MilestoneStatus.PASSED}
)
"""Statuses of milestones a plan edit may no longer change or remove."""

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class PlanValidationError(ValueError):
    """A plan (generated or edited) breaks the plan rules; the message says which."""


class Plan(BaseModel):
    """A validated plan: unique keys, known dependencies, no cycles, bounded size.

    The model bounds every plan by `PLAN_MILESTONES_CEILING`; a task's own (smaller) limit
    is checked by `validate_plan`, `parse_plan_text` and `apply_edits`.
    """

    milestones: list[MilestoneSpec] = Field(
        min_length=MIN_MILESTONES, max_length=PLAN_MILESTONES_CEILING
    )

    @model_validator(mode="after")
    def _check_graph(self) -> Plan:
        check_graph(self.milestones)
        return self

    @property
    def keys(self) -> list[str]:
        """Milestone keys in plan order."""
        return [m.key for m in self.milestones]

    def get(self, key: str) -> MilestoneSpec:
        """Return the milestone with `key`.

        Raises:
            KeyError: When the plan has no such milestone.
        """
        for milestone in self.milestones:
            if milestone.key == key:
                return milestone
        raise KeyError(key)


def check_graph(milestones: Sequence[MilestoneSpec]) -> None:
    """Check keys and dependencies of a milestone list.

    Args:
        milestones: The milestones in plan order.

    Raises:
        PlanValidationError: On a duplicate key, an unknown or self dependency, or a cycle.
    """
    keys: set[str] = set()
    for milestone in milestones:
        if milestone.key in keys:
            raise PlanValidationError(f"duplicate milestone key {milestone.key!r}")
        keys.add(milestone.key)
    for milestone in milestones:
        if len(set(milestone.depends_on)) != len(milestone.depends_on):
            raise PlanValidationError(f"milestone {milestone.key!r} repeats a dependency")
        for dep in milestone.depends_on:
            if dep == milestone.key:
                raise PlanValidationError(f"milestone {milestone.key!r} depends on itself")
            if dep not in keys:
                raise PlanValidationError(
                    f"milestone {milestone.key!r} depends on unknown milestone {dep!r}"
                )
    cycle = find_cycle(milestones)
    if cycle:
        raise PlanValidationError("dependency cycle: " + " -> ".join(cycle))


def find_cycle(milestones: Sequence[MilestoneSpec]) -> list[str] | None:
    """Return one dependency cycle as a key path (first key repeated at the end), or None."""
    deps = {m.key: list(m.depends_on) for m in milestones}
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(deps, white)
    for root in deps:
        if colour[root] != white:
            continue
        # Iterative DFS: plans come from an LLM or a person, recursion depth is not ours.
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        colour[root] = grey
        while stack:
            node, index = stack[-1]
            children = [d for d in deps[node] if d in deps]
            if index < len(children):
                stack[-1] = (node, index + 1)
                child = children[index]
                if colour[child] == grey:
                    return [*path[path.index(child) :], child]
                if colour[child] == white:
                    colour[child] = grey
                    stack.append((child, 0))
                    path.append(child)
            else:
                colour[node] = black
                stack.pop()
                path.pop()
    return None


def check_plan_size(count: int, max_milestones: int) -> None:
    """Refuse a plan with more milestones than the task accepts.

    Args:
        count: The plan's number of milestones.
        max_milestones: The task's limit (`AGENT_MAX_PLAN_MILESTONES` when it was created).

    Raises:
        PlanValidationError: Naming both numbers and the setting.
    """
    if count > max_milestones:
        raise PlanValidationError(
            f"the plan has {count} milestones; a plan may have at most {max_milestones} "
            "(AGENT_MAX_PLAN_MILESTONES)"
        )


def validate_plan(
    milestones: Iterable[MilestoneSpec], *, max_milestones: int = MAX_MILESTONES
) -> Plan:
    """Validate milestones as a plan of at most `max_milestones`.

    Raises:
        PlanValidationError: With a message fit to show the planner or a person.
    """
    specs = list(milestones)
    check_plan_size(len(specs), max_milestones)
    try:
        return Plan(milestones=specs)
    except PlanValidationError:
        raise
    except ValidationError as exc:
        raise PlanValidationError(_describe(exc)) from exc


def parse_plan_text(text: str, *, max_milestones: int = MAX_MILESTONES) -> Plan:
    """Parse and validate a planner's answer: JSON `{"milestones": [...]}`, maybe fenced.

    Raises:
        PlanValidationError: When the text is not valid JSON, not a valid plan, or a plan
            of more than `max_milestones`.
    """
    candidate = text.strip()
    fenced = _FENCE.search(candidate)
    if fenced:
        candidate = fenced.group(1).strip()
    elif not candidate.startswith("{"):
        start, end = candidate.find("{"), candidate.rfind("}")
        if start != -1 and end > start:
            candidate = candidate[start : end + 1]
    try:
        raw = json.loads(candidate)
    except json.JSONDecodeError as exc:
        raise PlanValidationError(f"the answer is not valid JSON: {exc.msg}") from exc
    if isinstance(raw, list):
        raw = {"milestones": raw}
    if not isinstance(raw, dict):
        raise PlanValidationError('the answer must be a JSON object {"milestones": [...]}')
    if isinstance(raw.get("milestones"), list):
        check_plan_size(len(raw["milestones"]), max_milestones)
    try:
        return Plan.model_validate(raw)
    except PlanValidationError:
        raise
    except ValidationError as exc:
        raise PlanValidationError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:10]:
        location = ".".join(str(p) for p in error["loc"]) or "plan"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


def apply_edits(
    plan: Plan,
    edits: PlanEdit,
    statuses: Mapping[str, MilestoneStatus] | None = None,
    *,
    max_milestones: int = MAX_MILESTONES,
) -> Plan:
    """Apply a person's edits to a plan and validate the result like a generated plan.

    Milestones that are running or passed are locked: they can be neither changed nor
    removed. Removals happen first, then changes, then additions (appended in order).

    Args:
        plan: The current plan.
        edits: Additions, removals and changes.
        statuses: Current milestone statuses (missing keys count as pending).
        max_milestones: The largest plan the task accepts.

    Returns:
        The edited, validated plan.

    Raises:
        PlanValidationError: When an edit names an unknown or locked milestone, adds a
            duplicate, or the result breaks the plan rules (its size included).
    """
    statuses = statuses or {}
    current = {m.key: m for m in plan.milestones}

    def locked(key: str) -> bool:
        return statuses.get(key, MilestoneStatus.PENDING) in LOCKED_STATUSES

    removed = set(edits.remove)
    for key in edits.remove:
        if key not in current:
            raise PlanValidationError(f"cannot remove unknown milestone {key!r}")
        if locked(key):
            raise PlanValidationError(f"cannot remove milestone {key!r}: it already ran")
    changes: dict[str, MilestoneChange] = {}
    for change in edits.change:
        if change.key not in current or change.key in removed:
            raise PlanValidationError(f"cannot change unknown milestone {change.key!r}")
        if locked(change.key):
            raise PlanValidationError(f"cannot change milestone {change.key!r}: it already ran")
        if change.key in changes:
            raise PlanValidationError(f"milestone {change.key!r} is changed twice")
        changes[change.key] = change
    result: list[MilestoneSpec] = []
    for milestone in plan.milestones:
        if milestone.key in removed:
            continue
        edit = changes.get(milestone.key)
        if edit is not None:
            milestone = milestone.model_copy(
                update={
                    name: value
                    for name, value in (
                        ("title", edit.title),
                        ("description", edit.description),
                        ("depends_on", edit.depends_on),
                    )
                    if value is not None
                }
            )
        result.append(milestone)
    for added in edits.add:
        if added.key in current and added.key not in removed:
            raise PlanValidationError(f"cannot add milestone {added.key!r}: the key exists")
        if added.key in removed:
            raise PlanValidationError(f"cannot remove and re-add milestone {added.key!r}")
        result.append(added)
    return validate_plan(result, max_milestones=max_milestones)


def ready_milestones(
    plan: Plan,
    statuses: Mapping[str, MilestoneStatus],
    running: Iterable[str] = (),
) -> list[str]:
    """Keys of pending milestones whose dependencies are all satisfied, in plan order."""
    active = set(running)
    ready = []
    for milestone in plan.milestones:
        if milestone.key in active:
            continue
        if statuses.get(milestone.key, MilestoneStatus.PENDING) != MilestoneStatus.PENDING:
            continue
        if all(statuses.get(dep) in DONE_STATUSES for dep in milestone.depends_on):
            ready.append(milestone.key)
    return ready


def blocked_milestones(plan: Plan, statuses: Mapping[str, MilestoneStatus]) -> list[str]:
    """Keys of pending milestones that can never run because a dependency failed."""
    failed = {k for k, s in statuses.items() if s == MilestoneStatus.FAILED}
    blocked: set[str] = set()
    changed = True
    while changed:
        changed = False
        for milestone in plan.milestones:
            if milestone.key in blocked:
                continue
            if statuses.get(milestone.key, MilestoneStatus.PENDING) != MilestoneStatus.PENDING:
                continue
            if any(dep in failed or dep in blocked for dep in milestone.depends_on):
                blocked.add(milestone.key)
                changed = True
    return [k for k in plan.keys if k in blocked]


def topological_order(plan: Plan) -> list[str]:
    """Keys in an order where every milestone comes after its dependencies (stable)."""
    done: set[str] = set()
    order: list[str] = []
    remaining = list(plan.milestones)
    while remaining:
        progressed = False
        for milestone in list(remaining):
            if all(dep in done for dep in milestone.depends_on):
                order.append(milestone.key)
                done.add(milestone.key)
                remaining.remove(milestone)
                progressed = True
        if not progressed:  # pragma: no cover - a validated plan has no cycle
            raise PlanValidationError("dependency cycle")
    return order
