"""Routing: task complexity x agent role -> model and context budget."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agent.config import Settings
from agent.events.types import AgentRole, TaskComplexity

CHEAP_MODEL = "gpt-4o-mini"
STRONG_MODEL = "gpt-4o"
LARGE_CONTEXT_MODEL = "gpt-4.1"
LARGE_CONTEXT_CHEAP_MODEL = "gpt-4.1-mini"

WILDCARD = "*"

_STRONG_ROLES = frozenset({AgentRole.PLANNER, AgentRole.WORKER, AgentRole.VERIFIER})

DEFAULT_CONTEXT_BUDGETS: dict[TaskComplexity, int] = {
    TaskComplexity.TRIVIAL: 4_000,
    TaskComplexity.SIMPLE: 8_000,
    TaskComplexity.MODERATE: 16_000,
    TaskComplexity.COMPLEX: 32_000,
    TaskComplexity.CONTEXT_HEAVY: 200_000,
}
"""Default tokens of context per call; beyond it the workflow compresses the context."""

MODEL_CONTEXT_WINDOWS: dict[str, int] = {
    CHEAP_MODEL: 128_000,
    STRONG_MODEL: 128_000,
    LARGE_CONTEXT_MODEL: 1_047_576,
    LARGE_CONTEXT_CHEAP_MODEL: 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "o4-mini": 200_000,
}
"""Known context windows; a budget never exceeds the routed model's window."""

OUTPUT_RESERVE_FRACTION = 0.25
"""Share of a model's window kept free for the answer when capping a budget."""


class ModelRoute(BaseModel):
    """Where one agent call goes: the model and how much context it may be given."""

    model_config = ConfigDict(frozen=True)

    model: str
    context_budget_tokens: int = Field(ge=1)


def _default_model(complexity: TaskComplexity, role: AgentRole) -> str:
    # The classifier runs before the complexity is known, so it is always cheap.
    if role is AgentRole.CLASSIFIER:
        return CHEAP_MODEL
    if complexity is TaskComplexity.CONTEXT_HEAVY:
        return LARGE_CONTEXT_MODEL if role in _STRONG_ROLES else LARGE_CONTEXT_CHEAP_MODEL
    if complexity is TaskComplexity.COMPLEX:
        return STRONG_MODEL if role in _STRONG_ROLES else CHEAP_MODEL
    if complexity is TaskComplexity.MODERATE:
        return STRONG_MODEL if role is AgentRole.PLANNER else CHEAP_MODEL
    return CHEAP_MODEL


class ModelRouter:
    """Chooses a model and a context budget per (complexity, role).

    Overrides come from `settings.model_routes` and `settings.context_budgets`, keyed
    `"<complexity>.<role>"`, `"*.<role>"` or `"<complexity>.*"` (most specific wins).
    """

    def __init__(self, settings: Settings) -> None:
        self._routes = dict(settings.model_routes)
        self._budgets = dict(settings.context_budgets)

    @staticmethod
    def _keys(complexity: TaskComplexity, role: AgentRole) -> tuple[str, ...]:
        return (
            f"{complexity.value}.{role.value}",
            f"{WILDCARD}.{role.value}",
            f"{complexity.value}.{WILDCARD}",
        )

    def route(self, complexity: TaskComplexity, role: AgentRole) -> ModelRoute:
        """Return the model and context budget for one agent call.

        Args:
            complexity: The task's complexity class.
            role: The agent making the call.

        Returns:
            The route.
        """
        keys = self._keys(complexity, role)
        model = next((self._routes[k] for k in keys if k in self._routes), None)
        if model is None:
            model = _default_model(complexity, role)
        budget = next((self._budgets[k] for k in keys if k in self._budgets), None)
        if budget is None:
            budget = DEFAULT_CONTEXT_BUDGETS[complexity]
            window = MODEL_CONTEXT_WINDOWS.get(model)
            if window is not None:
                budget = min(budget, int(window * (1 - OUTPUT_RESERVE_FRACTION)))
        return ModelRoute(model=model, context_budget_tokens=budget)
