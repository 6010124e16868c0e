"""The pure plan rules, without Temporal."""

from __future__ import annotations

import pytest

from agent.contract.plan import (
    PlanValidationError,
    apply_edits,
    blocked_milestones,
    find_cycle,
    parse_plan_text,
    ready_milestones,
    topological_order,
    validate_plan,
)
from agent.contract.task import MAX_MILESTONES, MilestoneChange, MilestoneSpec, PlanEdit
from agent.events.types import MilestoneStatus


def spec(key: str, *deps: str) -> MilestoneSpec:
    return MilestoneSpec(key=key, title=f"Do {key}", depends_on=list(deps))


DIAMOND = [spec("a"), spec("b", "a"), spec("c", "a"), spec("d", "b", "c")]


def test_valid_diamond_plan() -> None:
    plan = validate_plan(DIAMOND)
    assert plan.keys == ["a", "b", "c", "d"]
    assert topological_order(plan) == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("milestones", "message"),
    [
        ([spec("a"), spec("a")], "duplicate"),
        ([spec("a", "zzz")], "unknown"),
        ([spec("a", "a")], "itself"),
        ([spec("a", "b"), spec("b", "a")], "cycle"),
        ([spec("a"), spec("b", "a", "a")], "repeats"),
        ([], "at least 1"),
        ([spec(f"m{i}") for i in range(MAX_MILESTONES + 1)], "at most"),
    ],
)
def test_invalid_plans_are_rejected(milestones: list[MilestoneSpec], message: str) -> None:
    with pytest.raises(PlanValidationError, match=message):
        validate_plan(milestones)


def test_find_cycle_returns_the_path() -> None:
    assert find_cycle([spec("a", "c"), spec("b", "a"), spec("c", "b")]) == ["a", "c", "b", "a"]
    assert find_cycle(DIAMOND) is None


def test_parse_plan_text_accepts_fenced_json_and_reports_errors() -> None:
    text = 'Here:\n```json\n{"milestones": [{"key": "m1", "title": "T", "depends_on": []}]}\n```'
    assert parse_plan_text(text).keys == ["m1"]
    with pytest.raises(PlanValidationError, match="not valid JSON"):
        parse_plan_text("{not json")
    with pytest.raises(PlanValidationError, match="milestones"):
        parse_plan_text('{"steps": []}')
    with pytest.raises(PlanValidationError, match="pattern"):
        parse_plan_text('{"milestones": [{"key": "bad key!", "title": "T"}]}')


def test_apply_edits_add_remove_change() -> None:
    plan = validate_plan(DIAMOND)
    edited = apply_edits(
        plan,
        PlanEdit(
            add=[spec("e", "d")],
            remove=["c"],
            change=[MilestoneChange(key="d", depends_on=["b"], title="Finish")],
        ),
    )
    assert edited.keys == ["a", "b", "d", "e"]
    assert edited.get("d").depends_on == ["b"]
    assert edited.get("d").title == "Finish"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (PlanEdit(remove=["c"]), "unknown milestone 'c'"),  # d still depends on c
        (PlanEdit(remove=["x"]), "unknown"),
        (PlanEdit(change=[MilestoneChange(key="a", title="New")]), "already ran"),
        (PlanEdit(remove=["b"]), "already ran"),
        (PlanEdit(add=[spec("b")]), "exists"),
        (PlanEdit(change=[MilestoneChange(key="c", depends_on=["d"])]), "cycle"),
    ],
)
def test_invalid_edits_are_rejected(edit: PlanEdit, message: str) -> None:
    plan = validate_plan(DIAMOND)
    statuses = {"a": MilestoneStatus.PASSED, "b": MilestoneStatus.IN_PROGRESS}
    with pytest.raises(PlanValidationError, match=message):
        apply_edits(plan, edit, statuses)


def test_ready_and_blocked_milestones() -> None:
    plan = validate_plan(DIAMOND)
    assert ready_milestones(plan, {}) == ["a"]
    passed_a = {"a": MilestoneStatus.PASSED}
    assert ready_milestones(plan, passed_a) == ["b", "c"]
    assert ready_milestones(plan, passed_a, running=["b"]) == ["c"]
    skipped_b = {**passed_a, "b": MilestoneStatus.SKIPPED, "c": MilestoneStatus.PASSED}
    assert ready_milestones(plan, skipped_b) == ["d"]
    failed_b = {**passed_a, "b": MilestoneStatus.FAILED}
    assert blocked_milestones(plan, failed_b) == ["d"]


def test_the_plan_limit_is_a_parameter_up_to_the_ceiling() -> None:
    # Arrange
    big = [spec(f"m{i}", *([f"m{i - 1}"] if i else [])) for i in range(2_000)]

    # Act
    plan = validate_plan(big, max_milestones=2_000)

    # Assert
    assert len(plan.keys) == 2_000
    with pytest.raises(PlanValidationError, match="2000 milestones; a plan may have at most 100"):
        validate_plan(big)
    with pytest.raises(PlanValidationError, match="AGENT_MAX_PLAN_MILESTONES"):
        validate_plan(big, max_milestones=1_999)


def test_a_planner_answer_or_edit_past_the_limit_names_it() -> None:
    # Arrange
    text = (
        '{"milestones": [' + ", ".join(f'{{"key": "m{i}", "title": "T"}}' for i in range(4)) + "]}"
    )
    plan = validate_plan(DIAMOND)

    # Act / Assert
    with pytest.raises(PlanValidationError, match="4 milestones; a plan may have at most 3"):
        parse_plan_text(text, max_milestones=3)
    assert len(parse_plan_text(text, max_milestones=4).keys) == 4
    with pytest.raises(PlanValidationError, match="5 milestones; a plan may have at most 4"):
        apply_edits(plan, PlanEdit(add=[spec("e")]), max_milestones=4)
    assert apply_edits(plan, PlanEdit(add=[spec("e")]), max_milestones=5).keys[-1] == "e"
