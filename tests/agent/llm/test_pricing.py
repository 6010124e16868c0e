from __future__ import annotations

import pytest

from agent.config import ModelPrice, Settings
from agent.llm.pricing import PriceTable
from agent.llm.types import Usage


def test_cost_uses_default_price_per_million_tokens(llm_settings: Settings) -> None:
    # Arrange
    table = PriceTable(llm_settings)
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000)

    # Act
    cost = table.cost("gpt-4o-mini", usage)

    # Assert
    assert cost == pytest.approx(0.15 + 0.30)


def test_configured_price_overrides_default_and_adds_models() -> None:
    settings = Settings(
        _env_file=None,
        model_prices={
            "gpt-4o-mini": ModelPrice(input_per_million=1, output_per_million=2),
            "my-local-model": ModelPrice(input_per_million=0, output_per_million=0),
        },
    )
    table = PriceTable(settings)
    usage = Usage(input_tokens=2_000_000, output_tokens=1_000_000)

    assert table.cost("gpt-4o-mini", usage) == pytest.approx(4.0)
    assert table.cost("my-local-model", usage) == 0.0


def test_dated_snapshot_is_priced_as_its_base_model(llm_settings: Settings) -> None:
    table = PriceTable(llm_settings)
    usage = Usage(input_tokens=1_000_000, output_tokens=0)

    assert table.cost("gpt-4o-2024-08-06", usage) == pytest.approx(2.50)


def test_unknown_model_cost_is_unknown_not_zero(llm_settings: Settings) -> None:
    table = PriceTable(llm_settings)

    cost = table.cost("mystery-model", Usage(input_tokens=10, output_tokens=10))

    assert cost is None
