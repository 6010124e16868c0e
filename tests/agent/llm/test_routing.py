from __future__ import annotations

import pytest

from agent.config import Settings
from agent.events.types import AgentRole, TaskComplexity
from agent.llm.routing import (
    CHEAP_MODEL,
    DEFAULT_CONTEXT_BUDGETS,
    LARGE_CONTEXT_MODEL,
    STRONG_MODEL,
    ModelRouter,
)


@pytest.mark.parametrize("complexity", list(TaskComplexity))
def test_classifier_is_always_the_cheap_model(
    llm_settings: Settings, complexity: TaskComplexity
) -> None:
    route = ModelRouter(llm_settings).route(complexity, AgentRole.CLASSIFIER)

    assert route.model == CHEAP_MODEL


@pytest.mark.parametrize("complexity", [TaskComplexity.TRIVIAL, TaskComplexity.SIMPLE])
@pytest.mark.parametrize("role", list(AgentRole))
def test_trivial_and_simple_tasks_use_the_cheap_model(
    llm_settings: Settings, complexity: TaskComplexity, role: AgentRole
) -> None:
    assert ModelRouter(llm_settings).route(complexity, role).model == CHEAP_MODEL


@pytest.mark.parametrize("role", [AgentRole.PLANNER, AgentRole.VERIFIER, AgentRole.WORKER])
def test_complex_tasks_use_the_strong_model_for_core_roles(
    llm_settings: Settings, role: AgentRole
) -> None:
    assert ModelRouter(llm_settings).route(TaskComplexity.COMPLEX, role).model == STRONG_MODEL


def test_context_heavy_tasks_use_a_large_context_model_with_a_large_budget(
    llm_settings: Settings,
) -> None:
    route = ModelRouter(llm_settings).route(TaskComplexity.CONTEXT_HEAVY, AgentRole.WORKER)

    assert route.model == LARGE_CONTEXT_MODEL
    assert route.context_budget_tokens == DEFAULT_CONTEXT_BUDGETS[TaskComplexity.CONTEXT_HEAVY]
    assert route.context_budget_tokens > DEFAULT_CONTEXT_BUDGETS[TaskComplexity.COMPLEX]


def test_budget_grows_with_complexity(llm_settings: Settings) -> None:
    router = ModelRouter(llm_settings)
    budgets = [router.route(c, AgentRole.WORKER).context_budget_tokens for c in TaskComplexity]

    assert budgets == sorted(budgets)


def test_specific_override_beats_role_wildcard_beats_complexity_wildcard() -> None:
    settings = Settings(
        _env_file=None,
        model_routes={
            "complex.planner": "specific",
            "*.planner": "role-wide",
            "complex.*": "complexity-wide",
        },
        context_budgets={"*.planner": 1234},
    )
    router = ModelRouter(settings)

    assert router.route(TaskComplexity.COMPLEX, AgentRole.PLANNER).model == "specific"
    assert router.route(TaskComplexity.SIMPLE, AgentRole.PLANNER).model == "role-wide"
    assert router.route(TaskComplexity.COMPLEX, AgentRole.WORKER).model == "complexity-wide"
    assert router.route(TaskComplexity.SIMPLE, AgentRole.PLANNER).context_budget_tokens == 1234


def test_default_budget_never_exceeds_the_model_window() -> None:
    settings = Settings(
        _env_file=None,
        model_routes={"context_heavy.worker": STRONG_MODEL},
    )

    route = ModelRouter(settings).route(TaskComplexity.CONTEXT_HEAVY, AgentRole.WORKER)

    assert route.model == STRONG_MODEL
    assert route.context_budget_tokens < 128_000
