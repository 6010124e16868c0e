"""What the simulated agents answer: pure, deterministic functions of the request.

The same request (model, role, messages) always gets the same answer: every random choice
is drawn from a generator seeded with a hash of the request.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from typing import Any

from agent.events.types import AgentRole, TaskComplexity
from agent.llm.simulator.directives import (
    Directives,
    InvalidPlanKind,
    PlanShape,
    strip_directives,
)
from agent.llm.simulator.messages import Message as Message
from agent.llm.tokens import CHARS_PER_TOKEN

GOAL_LINE = re.compile(r"^\s*goal\s*:\s*(?P<goal>.+)$", re.IGNORECASE | re.MULTILINE)
MILESTONE_LINE = re.compile(r"^\s*milestone\s*:\s*(?P<key>\S+)", re.IGNORECASE | re.MULTILINE)
ATTEMPT_LINE = re.compile(r"^\s*attempt\s*:\s*(?P<n>\d+)", re.IGNORECASE | re.MULTILINE)
WORD = re.compile(r"[A-Za-z0-9']+")

# Agent nouns only ("verify your work" in a worker prompt must not make it a verifier);
# checked in this order.
ROLE_KEYWORDS: tuple[tuple[AgentRole, tuple[str, ...]], ...] = (
    (AgentRole.CLASSIFIER, ("classifier",)),
    (AgentRole.COMPRESSOR, ("compressor",)),
    (AgentRole.SUMMARISER, ("summariser", "summarizer")),
    (AgentRole.VERIFIER, ("verifier",)),
    (AgentRole.PLANNER, ("planner",)),
)

JSON_ROLES = frozenset({AgentRole.PLANNER, AgentRole.VERIFIER, AgentRole.CLASSIFIER})
"""Roles whose answer callers parse as JSON."""

MIN_DERIVED_MILESTONES = 2
MAX_DERIVED_MILESTONES = 8
WORDS_PER_DERIVED_MILESTONE = 8
DIAMOND_SIZE = 4
SUMMARY_MIN_TOKENS = 32
COMPRESSION_RATIO = 4
TOPIC_WORDS = 6

# Goal length in words -> complexity, when no `[complexity=...]` directive is given.
COMPLEXITY_BY_WORDS: tuple[tuple[int, TaskComplexity], ...] = (
    (6, TaskComplexity.TRIVIAL),
    (15, TaskComplexity.SIMPLE),
    (40, TaskComplexity.MODERATE),
    (120, TaskComplexity.COMPLEX),
)

STEP_VERBS = (
    "Research",
    "Outline",
    "Design",
    "Draft",
    "Implement",
    "Analyse",
    "Review",
    "Test",
    "Refine",
    "Integrate",
    "Document",
    "Polish",
)

_VOCABULARY_TEXT = (
    "the analysis shows that a durable approach keeps every intermediate result while "
    "each step builds on verified work from earlier milestones and the plan stays "
    "flexible enough to absorb feedback without losing context so the final answer is "
    "consistent complete and easy to review because every claim is backed by evidence "
    "gathered during execution including measurements examples trade-offs risks and "
    "open questions that remain for later iterations of the task"
)
VOCABULARY = tuple(_VOCABULARY_TEXT.split())


def detect_role(header: str | None, messages: Sequence[Message]) -> AgentRole:
    """Find the calling agent: the `X-Agent-Role` header, else keywords of the system prompt.

    Args:
        header: Value of `X-Agent-Role`, if sent.
        messages: The request's messages.

    Returns:
        The role; `worker` when nothing else matches.
    """
    if header:
        try:
            return AgentRole(header.strip().lower())
        except ValueError:
            pass
    system = " ".join(m.content for m in messages if m.role in {"system", "developer"}).lower()
    for role, keywords in ROLE_KEYWORDS:
        if any(keyword in system for keyword in keywords):
            return role
    return AgentRole.WORKER


def _canonical(message: Message) -> list[Any]:
    # Tool fields join only when present, so plain conversations keep their seeds.
    canonical: list[Any] = [message.role, message.content]
    if message.tool_calls:
        canonical.append([[c.id, c.name, c.arguments] for c in message.tool_calls])
    if message.tool_call_id is not None:
        canonical.append(message.tool_call_id)
    return canonical


def request_seed(model: str, role: AgentRole, messages: Sequence[Message]) -> int:
    """Hash a request into the seed of its answer."""
    canonical = json.dumps(
        [model, role.value, [_canonical(m) for m in messages]], separators=(",", ":")
    )
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")


def conversation_key(model: str, role: AgentRole, messages: Sequence[Message]) -> str:
    """Identify a request's conversation: everything before the first assistant message.

    A retry of the same request and a re-ask that appends the model's answer and a
    correction share this key, so `[fault_count=N]` lets them through after N faults.
    """
    head: list[Message] = []
    for message in messages:
        if message.role == "assistant":
            break
        head.append(message)
    return f"{request_seed(model, role, head):016x}"


def goal_text(messages: Sequence[Message]) -> str:
    """The goal: a `Goal: ...` line when present, else the last user message."""
    for message in messages:
        match = GOAL_LINE.search(message.content)
        if match is not None:
            return match.group("goal").strip()
    users = [m.content for m in messages if m.role == "user"]
    return users[-1].strip() if users else ""


def _words(text: str) -> list[str]:
    return WORD.findall(strip_directives(text))


def _topic(messages: Sequence[Message]) -> str:
    words = _words(goal_text(messages))[:TOPIC_WORDS]
    return " ".join(words) if words else "the task"


def _filler(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    length = 0
    sentence_left = rng.randint(8, 16)
    while length < chars:
        word = rng.choice(VOCABULARY)
        if not words or sentence_left == 0:
            word = word.capitalize()
        sentence_left -= 1
        if sentence_left <= 0:
            word += "."
            sentence_left = rng.randint(8, 16)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)


def text_of_tokens(heading: str, rng: random.Random, tokens: int) -> str:
    """Return text whose `count_tokens` is exactly `tokens`, starting with `heading`."""
    target = tokens * CHARS_PER_TOKEN
    text = f"{heading}\n\n" if heading else ""
    if len(text) < target:
        text += _filler(rng, target - len(text))
    text = text[:target]
    return text[:-1] + "." if len(text) > 1 and text[-1] == " " else text


def derived_milestone_count(messages: Sequence[Message]) -> int:
    """Milestones of a plan without `[milestones=N]`: grows with the goal's length."""
    words = len(_words(goal_text(messages)))
    count = MIN_DERIVED_MILESTONES + words // WORDS_PER_DERIVED_MILESTONE
    return max(MIN_DERIVED_MILESTONES, min(MAX_DERIVED_MILESTONES, count))


def plan_dependencies(shape: PlanShape, count: int, rng: random.Random) -> list[list[int]]:
    """Dependencies (0-based indices of earlier milestones) of each milestone of a plan."""
    if shape is PlanShape.DIAMOND:
        return [[], [0], [0], [1, 2]]
    if shape is PlanShape.SEQUENTIAL:
        return [[] if i == 0 else [i - 1] for i in range(count)]
    if shape is PlanShape.PARALLEL:
        return [[] for _ in range(count)]
    deps: list[list[int]] = []
    for i in range(count):
        if i == 0 or (i < 3 and rng.random() < 0.3):
            deps.append([])
            continue
        window = list(range(max(0, i - 3), i))
        picked = rng.sample(window, k=min(len(window), 2 if rng.random() < 0.3 else 1))
        deps.append(sorted(picked))
    return deps


def plan_answer(messages: Sequence[Message], directives: Directives, seed: int) -> str:
    """The planner's JSON plan: `{"milestones": [{key, title, description, depends_on}]}`."""
    rng = random.Random(seed)
    shape = directives.plan or PlanShape.DAG
    if shape is PlanShape.DIAMOND:
        count = DIAMOND_SIZE
    else:
        count = directives.milestones or derived_milestone_count(messages)
    deps = plan_dependencies(shape, count, rng)
    topic = _topic(messages)
    milestones = [
        {
            "key": f"m{i + 1}",
            "title": f"{STEP_VERBS[i % len(STEP_VERBS)]} {topic}",
            "description": (
                f"Step {i + 1} of {count}: {STEP_VERBS[i % len(STEP_VERBS)].lower()} "
                f"{topic}, building on {', '.join(f'm{d + 1}' for d in deps[i]) or 'the goal'}."
            ),
            "depends_on": [f"m{d + 1}" for d in deps[i]],
        }
        for i in range(count)
    ]
    return json.dumps({"milestones": milestones})


def invalid_plan_answer(messages: Sequence[Message], directives: Directives, seed: int) -> str:
    """A plan that fails validation: malformed JSON, a cycle, an unknown or duplicate key."""
    kinds = list(InvalidPlanKind)
    kind = directives.invalid or kinds[seed % len(kinds)]
    valid = plan_answer(messages, directives.model_copy(update={"plan": None}), seed)
    if kind is InvalidPlanKind.MALFORMED:
        return valid[: len(valid) // 2]
    plan = json.loads(valid)
    milestones = plan["milestones"]
    if len(milestones) < 2:
        milestones.append({**milestones[0], "key": "m2", "depends_on": ["m1"]})
    if kind is InvalidPlanKind.CYCLE:
        milestones[0]["depends_on"] = [milestones[-1]["key"]]
        milestones[-1]["depends_on"] = [milestones[0]["key"]]
    elif kind is InvalidPlanKind.UNKNOWN_DEPENDENCY:
        milestones[-1]["depends_on"] = ["m_missing"]
    else:
        milestones[-1]["key"] = milestones[0]["key"]
    return json.dumps(plan)


def verify_answer(messages: Sequence[Message], directives: Directives) -> str:
    """The verifier's verdict `{"passed", "feedback"}`, steered by `fail_first`/`fail_always`.

    The milestone and attempt come from `Milestone: <key>` / `Attempt: <n>` lines of the
    last message that has them.
    """
    key, attempt = "unknown", 1
    for message in messages:
        if (found := MILESTONE_LINE.search(message.content)) is not None:
            key = found.group("key")
        if (found_attempt := ATTEMPT_LINE.search(message.content)) is not None:
            attempt = int(found_attempt.group("n"))
    failed = (directives.fail_always is not None and directives.fail_always == key) or (
        directives.fail_first is not None and attempt <= directives.fail_first
    )
    if failed:
        feedback = (
            f"Milestone {key}, attempt {attempt}: the result is incomplete. Cover every "
            "point of the description, add concrete evidence and state the remaining risks."
        )
    else:
        feedback = f"Milestone {key}, attempt {attempt}: the result meets the description."
    return json.dumps({"passed": not failed, "feedback": feedback})


def classify_answer(messages: Sequence[Message], directives: Directives) -> str:
    """The classifier's `{"complexity": ...}`: the directive, else by the goal's length."""
    complexity = directives.complexity
    if complexity is None:
        words = len(_words(goal_text(messages)))
        complexity = next(
            (c for limit, c in COMPLEXITY_BY_WORDS if words < limit),
            TaskComplexity.CONTEXT_HEAVY,
        )
    return json.dumps({"complexity": complexity.value})


def answer(
    role: AgentRole,
    messages: Sequence[Message],
    directives: Directives,
    seed: int,
    *,
    output_tokens: int,
    input_tokens: int,
) -> str:
    """The simulated agent's full answer to one request.

    Args:
        role: The calling agent.
        messages: The request's messages.
        directives: Directives found in the messages.
        seed: The request's seed (`request_seed`).
        output_tokens: Length of free-text answers (worker) in tokens.
        input_tokens: Estimated input tokens (compressors answer with a fraction of it).

    Returns:
        The answer text (JSON for planner, verifier and classifier).
    """
    rng = random.Random(seed)
    topic = _topic(messages)
    if role is AgentRole.PLANNER:
        return plan_answer(messages, directives, seed)
    if role is AgentRole.VERIFIER:
        return verify_answer(messages, directives)
    if role is AgentRole.CLASSIFIER:
        return classify_answer(messages, directives)
    if role is AgentRole.COMPRESSOR:
        tokens = max(SUMMARY_MIN_TOKENS, min(output_tokens, input_tokens // COMPRESSION_RATIO))
        return text_of_tokens(f"Compressed context: {topic}", rng, tokens)
    if role is AgentRole.SUMMARISER:
        tokens = max(SUMMARY_MIN_TOKENS, output_tokens // 2)
        return text_of_tokens(f"Summary: {topic}", rng, tokens)
    keys = [m.group("key") for msg in messages if (m := MILESTONE_LINE.search(msg.content))]
    heading = f"## {keys[-1]}: {topic}" if keys else f"## {topic}"
    return text_of_tokens(heading, rng, output_tokens)
