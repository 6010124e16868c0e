"""Per-model prices and the cost of one call."""

from __future__ import annotations

import re

import structlog

from agent.config import ModelPrice, Settings
from agent.events.types import AgentRole, TaskComplexity
from agent.llm.routing import ModelRouter
from agent.llm.types import Usage

logger = structlog.get_logger(__name__)

TOKENS_PER_PRICE_UNIT = 1_000_000
"""Prices are quoted in USD per million tokens."""

DEFAULT_MODEL_PRICES: dict[str, tuple[float, float]] = {
    # model: (input USD / 1M tokens, output USD / 1M tokens), OpenAI list prices.
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o4-mini": (1.10, 4.40),
}
"""Built-in prices of the default routed models; `settings.model_prices` overrides them."""

_DATED_SNAPSHOT = re.compile(r"^(?P<base>.+)-\d{4}-\d{2}-\d{2}$")


class PriceTable:
    """Prices per model, from built-in defaults overridden by `settings.model_prices`.

    A provider may answer with a dated snapshot name (`gpt-4o-mini-2024-07-18`); such a
    name is priced as its base model unless the snapshot has its own entry.
    """

    def __init__(self, settings: Settings) -> None:
        self._prices: dict[str, ModelPrice] = {
            model: ModelPrice(input_per_million=inp, output_per_million=out)
            for model, (inp, out) in DEFAULT_MODEL_PRICES.items()
        }
        self._prices.update(settings.model_prices)
        self._warned: set[str] = set()

    def price(self, model: str) -> ModelPrice | None:
        """Return the price of `model`, or None when it is unknown.

        Args:
            model: Model name, possibly a dated snapshot.

        Returns:
            The price, or None.
        """
        found = self._prices.get(model)
        if found is None:
            match = _DATED_SNAPSHOT.match(model)
            if match is not None:
                found = self._prices.get(match.group("base"))
        return found

    def cost(self, model: str, usage: Usage) -> float | None:
        """Return the cost in USD of `usage` on `model`.

        Args:
            model: Model name, possibly a dated snapshot.
            usage: Tokens used by the call.

        Returns:
            The cost, or None when the model has no price: an unknown cost is recorded as
            unknown, never as 0.
        """
        price = self.price(model)
        if price is None:
            if model not in self._warned:
                self._warned.add(model)
                logger.warning("llm_price_unknown", model=model)
            return None
        return (
            usage.input_tokens * price.input_per_million
            + usage.output_tokens * price.output_per_million
        ) / TOKENS_PER_PRICE_UNIT


def unpriced_models(settings: Settings, complexity: TaskComplexity | None) -> list[str]:
    """The models a task may call that have no price, so a USD budget cannot bound them.

    Args:
        settings: The routes (`AGENT_MODEL_ROUTES`) and prices (`AGENT_MODEL_PRICES`).
        complexity: The task's complexity; None means the classifier chooses, so every
            complexity's routes (and the classifier's) count.

    Returns:
        The unpriced model names, sorted (empty when every model has a price).
    """
    router = ModelRouter(settings)
    prices = PriceTable(settings)
    complexities = [complexity] if complexity is not None else list(TaskComplexity)
    roles = [role for role in AgentRole if complexity is None or role is not AgentRole.CLASSIFIER]
    models = {router.route(c, role).model for c in complexities for role in roles}
    return sorted(model for model in models if prices.price(model) is None)
