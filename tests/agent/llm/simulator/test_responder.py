from __future__ import annotations

import json
import random
from typing import Any

import pytest

from agent.events.types import AgentRole, TaskComplexity
from agent.llm.simulator.directives import (
    BAD_JSON_ARGUMENTS,
    Fault,
    InvalidPlanKind,
    PlanShape,
    parse_directives,
    parse_tool_directives,
    strip_directives,
)
from agent.llm.simulator.faults import FaultCounter
from agent.llm.simulator.messages import SimToolCall
from agent.llm.simulator.responder import (
    Message,
    answer,
    conversation_key,
    derived_milestone_count,
    detect_role,
    invalid_plan_answer,
    plan_answer,
    request_seed,
    text_of_tokens,
)
from agent.llm.tokens import count_tokens


def msgs(user: str, system: str = "You are an agent.") -> list[Message]:
    return [Message("system", system), Message("user", user)]


def assert_valid_dag(plan: dict[str, Any]) -> list[dict[str, Any]]:
    milestones: list[dict[str, Any]] = plan["milestones"]
    keys = [m["key"] for m in milestones]
    assert len(keys) == len(set(keys))
    seen: set[str] = set()
    for m in milestones:  # listed in a topological order: deps always come first
        assert set(m["depends_on"]) <= seen
        assert m["title"]
        assert m["description"]
        seen.add(m["key"])
    return milestones


def test_directives_parse_first_occurrence_and_ignore_invalid_values() -> None:
    directives = parse_directives(
        ["Goal [milestones=12] [fault=429]", "[milestones=3] [tps=fast] [fault_role=verifier]"]
    )

    assert directives.milestones == 12
    assert directives.fault is Fault.RATE_LIMIT
    assert directives.fault_role is AgentRole.VERIFIER
    assert directives.tps is None


def test_role_header_wins_and_system_prompt_is_the_fallback() -> None:
    planner_prompt = msgs("x", system="You are the planner agent.")

    assert detect_role("verifier", planner_prompt) is AgentRole.VERIFIER
    assert detect_role(None, planner_prompt) is AgentRole.PLANNER
    assert detect_role(None, msgs("x", "You are the verifier.")) is AgentRole.VERIFIER
    assert detect_role(None, msgs("x", "You are the classifier.")) is AgentRole.CLASSIFIER
    assert detect_role(None, msgs("x", "You are the summariser.")) is AgentRole.SUMMARISER
    assert detect_role(None, msgs("x", "You are the compressor.")) is AgentRole.COMPRESSOR
    assert detect_role(None, msgs("x", "Do the work, verify it, follow the plan.")) is (
        AgentRole.WORKER
    )
    assert detect_role("nonsense", msgs("x", "You do the work.")) is AgentRole.WORKER


@pytest.mark.parametrize("count", [1, 4, 12, 40])
@pytest.mark.parametrize("shape", [PlanShape.SEQUENTIAL, PlanShape.PARALLEL, PlanShape.DAG])
def test_plan_has_the_requested_milestones_and_a_valid_dag(count: int, shape: PlanShape) -> None:
    messages = msgs(f"Goal: build it [milestones={count}] [plan={shape.value}]")

    plan = json.loads(plan_answer(messages, parse_directives([messages[1].content]), seed=7))

    milestones = assert_valid_dag(plan)
    assert len(milestones) == count
    if shape is PlanShape.SEQUENTIAL:
        expected: list[list[str]] = [[]] + [[f"m{i}"] for i in range(1, count)]
        assert [m["depends_on"] for m in milestones] == expected
    if shape is PlanShape.PARALLEL:
        assert all(m["depends_on"] == [] for m in milestones)


def test_diamond_plan_is_a_then_b_and_c_then_d() -> None:
    messages = msgs("Goal: x [plan=diamond] [milestones=9]")

    plan = json.loads(plan_answer(messages, parse_directives([messages[1].content]), seed=1))

    assert [m["depends_on"] for m in plan["milestones"]] == [[], ["m1"], ["m1"], ["m2", "m3"]]


def test_derived_milestone_count_grows_with_the_goal() -> None:
    short = derived_milestone_count(msgs("Goal: write a haiku"))
    long = derived_milestone_count(msgs("Goal: " + " ".join(["word"] * 60)))

    assert 2 <= short < long <= 8


@pytest.mark.parametrize("kind", list(InvalidPlanKind))
def test_invalid_plan_fails_validation(kind: InvalidPlanKind) -> None:
    messages = msgs(f"Goal: x [milestones=3] [invalid={kind.value}]")

    text = invalid_plan_answer(messages, parse_directives([messages[1].content]), seed=3)

    if kind is InvalidPlanKind.MALFORMED:
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        return
    with pytest.raises(AssertionError):
        assert_valid_dag(json.loads(text))


def verdict(user: str) -> dict[str, Any]:
    messages = msgs(user)
    text = answer(
        AgentRole.VERIFIER,
        messages,
        parse_directives([user]),
        seed=0,
        output_tokens=10,
        input_tokens=10,
    )
    result: dict[str, Any] = json.loads(text)
    return result


def test_verifier_fails_the_first_k_attempts_then_passes() -> None:
    goal = "Goal: x [fail_first=2]\n"

    results = [verdict(f"{goal}Milestone: m3\nAttempt: {n}")["passed"] for n in (1, 2, 3)]

    assert results == [False, False, True]
    assert verdict(f"{goal}Milestone: m3\nAttempt: 1")["feedback"]


def test_verifier_fail_always_only_hits_that_milestone() -> None:
    goal = "Goal: x [fail_always=m2]\n"

    assert verdict(f"{goal}Milestone: m2\nAttempt: 9")["passed"] is False
    assert verdict(f"{goal}Milestone: m1\nAttempt: 1")["passed"] is True


def classify(user: str) -> str:
    directives = parse_directives([user])
    text = answer(AgentRole.CLASSIFIER, msgs(user), directives, 0, output_tokens=1, input_tokens=1)
    value: str = json.loads(text)["complexity"]
    return value


def test_classifier_answers_the_directive_or_by_goal_length() -> None:
    assert classify("Goal: x [complexity=context_heavy]") == "context_heavy"
    assert classify("Goal: hi") == "trivial"
    assert TaskComplexity(classify("Goal: " + "word " * 30)) is TaskComplexity.MODERATE


def test_worker_answer_has_the_requested_length_and_is_deterministic() -> None:
    messages = msgs("Goal: write\nMilestone: m4")
    seed = request_seed("m", AgentRole.WORKER, messages)
    args = (AgentRole.WORKER, messages, parse_directives([]), seed)

    first = answer(*args, output_tokens=123, input_tokens=5)
    second = answer(*args, output_tokens=123, input_tokens=5)

    assert first == second
    assert count_tokens(first) == 123
    assert first.startswith("## m4")


def test_compressor_answer_is_shorter_than_its_input() -> None:
    text = answer(
        AgentRole.COMPRESSOR,
        msgs("x" * 8000),
        parse_directives([]),
        0,
        output_tokens=1000,
        input_tokens=2000,
    )

    assert count_tokens(text) <= 2000 // 4


@pytest.mark.parametrize("tokens", [1, 2, 17, 500])
def test_text_of_tokens_is_exact(tokens: int) -> None:
    assert count_tokens(text_of_tokens("## head", random.Random(1), tokens)) == tokens


def test_conversation_key_is_shared_by_a_retry_and_a_re_ask_but_not_a_new_request() -> None:
    base = msgs("Goal: plan it")
    re_ask = [*base, Message("assistant", "{bad"), Message("user", "fix: invalid JSON")]

    key = conversation_key("m", AgentRole.PLANNER, base)

    assert conversation_key("m", AgentRole.PLANNER, list(base)) == key
    assert conversation_key("m", AgentRole.PLANNER, re_ask) == key
    assert conversation_key("m", AgentRole.PLANNER, msgs("Goal: other")) != key
    assert conversation_key("m", AgentRole.WORKER, base) != key


def test_fault_counter_faults_only_the_first_n_of_each_conversation() -> None:
    counter = FaultCounter(capacity=10)

    decisions = [counter.should_fault("a", 2) for _ in range(4)]

    assert decisions == [True, True, False, False]
    assert counter.should_fault("b", 2) is True
    assert counter.should_fault("c", None) is True
    assert counter.should_fault("a", 0) is False


def test_tool_directives_parse_names_and_json_arguments() -> None:
    text = (
        'Goal [tool=time.get_current_time {"timezone": "UTC"}] then '
        '[tool=docs.search {"q": "a]b", "tags": ["x", {"y": 1}]}] [tool=plain]'
        " [tool_bad_json=time.get_current_time]"
    )

    found = parse_tool_directives(text)

    assert [(d.function_name, d.arguments) for d in found] == [
        ("time__get_current_time", '{"timezone": "UTC"}'),
        ("docs__search", '{"q": "a]b", "tags": ["x", {"y": 1}]}'),
        ("plain", "{}"),
        ("time__get_current_time", BAD_JSON_ARGUMENTS),
    ]
    with pytest.raises(json.JSONDecodeError):
        json.loads(BAD_JSON_ARGUMENTS)


def test_malformed_tool_directives_are_ignored() -> None:
    text = '[tool=a.b {"x": ] [tool=c.d {"y": 1} trailing] [tool=e.f {"z": 2}'

    assert parse_tool_directives(text) == []


def test_tool_directives_are_stripped_from_the_topic() -> None:
    messages = msgs('Goal: plan a trip [tool=time.get_current_time {"timezone": "UTC"}] [tps=0]')

    plan = json.loads(plan_answer(messages, parse_directives([m.content for m in messages]), 1))

    assert plan["milestones"][0]["title"] == "Research plan a trip"
    assert strip_directives('a [tool=x.y {"k": "v"}] b [tool_bad_json=x.y] c') == "a  b  c"


def test_tool_fields_change_the_seed_only_when_present() -> None:
    plain = [Message("user", "x"), Message("assistant", "")]
    with_call = [
        Message("user", "x"),
        Message("assistant", "", tool_calls=(SimToolCall("call_1", "f", "{}"),)),
    ]

    assert request_seed("m", AgentRole.WORKER, plain) != request_seed(
        "m", AgentRole.WORKER, with_call
    )
    assert request_seed("m", AgentRole.WORKER, [Message("user", "x")]) == request_seed(
        "m", AgentRole.WORKER, [Message("user", "x", tool_calls=())]
    )
