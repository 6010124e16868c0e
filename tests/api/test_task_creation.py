"""Creating tasks: `Idempotency-Key` replays must match the whole request; USD budgets
must be enforceable."""

from __future__ import annotations

from typing import Any

import pytest

from agent.config import Settings
from agent.events.types import TaskComplexity
from agent.llm.pricing import unpriced_models
from api.schemas import TaskCreate
from api.services.task_creation import request_fingerprint
from tests.api.conftest import ApiFactory, ApiUser, RunningApi
from tests.api.test_http import assert_error_shape

BASE: dict[str, Any] = {"goal": "write a haiku [milestones=2]", "max_parallel": 2}


@pytest.mark.parametrize(
    "change",
    [
        {"budget": {"max_tokens": 5000}},
        {"breakpoints": ["after_plan"]},
        {"max_attempts": 5},
        {"breakpoint_timeout_seconds": 60},
        {"complexity": "complex"},
    ],
    ids=["budget", "breakpoints", "max_attempts", "timeout", "complexity"],
)
async def test_a_replay_with_any_other_field_is_refused(
    api: RunningApi, alice: ApiUser, change: dict[str, Any]
) -> None:
    # Arrange
    headers = {"Idempotency-Key": "same-key"}
    async with api.client(alice.key) as client:
        first = await client.post("/v1/tasks", json=BASE, headers=headers)

        # Act
        replay = await client.post("/v1/tasks", json={**BASE, **change}, headers=headers)
        listed = await client.get("/v1/tasks")

    # Assert
    assert first.status_code == 201, first.text
    assert_error_shape(replay, 409, "idempotency_key_reused")
    assert replay.json()["error"]["details"] == {"task_id": first.json()["id"]}
    assert [t["id"] for t in listed.json()["items"]] == [first.json()["id"]]


async def test_a_replay_of_the_same_request_in_another_shape_is_the_same_task(
    api: RunningApi, alice: ApiUser
) -> None:
    # Arrange: the same values, other key order and defaults spelled out.
    headers = {"Idempotency-Key": "shape"}
    spelled_out = {"max_parallel": 2, "max_attempts": 3, "goal": BASE["goal"], "breakpoints": []}
    async with api.client(alice.key) as client:
        first = await client.post("/v1/tasks", json=BASE, headers=headers)

        # Act
        replay = await client.post("/v1/tasks", json=spelled_out, headers=headers)

    # Assert
    assert replay.status_code == 201, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]


def test_fingerprint_covers_every_field() -> None:
    base = TaskCreate.model_validate(BASE)
    other = TaskCreate.model_validate({**BASE, "breakpoint_default_action": "abort"})
    assert request_fingerprint(base) == request_fingerprint(TaskCreate.model_validate(BASE))
    assert request_fingerprint(base) != request_fingerprint(other)


def test_unpriced_models_follow_the_routes() -> None:
    routed = Settings(_env_file=None, model_routes={"*.worker": "local-llama"}, model_prices={})
    priced = Settings(
        _env_file=None,
        model_routes={"*.worker": "local-llama"},
        model_prices={"local-llama": {"input_per_million": 0.1, "output_per_million": 0.2}},
    )
    assert unpriced_models(Settings(_env_file=None, model_routes={}), None) == []
    assert unpriced_models(routed, TaskComplexity.SIMPLE) == ["local-llama"]
    assert unpriced_models(routed, None) == ["local-llama"]
    assert unpriced_models(priced, None) == []


async def test_a_usd_budget_on_an_unpriced_model_is_refused(
    api_factory: ApiFactory, api_settings: Settings, alice: ApiUser
) -> None:
    # Arrange: the worker role runs on a model without a price.
    settings = api_settings.model_copy(update={"model_routes": {"*.worker": "local-llama"}})
    api = await api_factory(settings)
    async with api.client(alice.key) as client:
        # Act
        usd = await client.post("/v1/tasks", json={**BASE, "budget": {"max_cost_usd": 0.5}})
        tokens = await client.post("/v1/tasks", json={**BASE, "budget": {"max_tokens": 9000}})
        listed = await client.get("/v1/tasks")

    # Assert
    assert_error_shape(usd, 422, "validation_error")
    error = usd.json()["error"]
    assert "local-llama" in error["message"]
    assert "AGENT_MODEL_PRICES" in error["message"]
    assert error["details"][0]["loc"] == ["body", "budget", "max_cost_usd"]
    assert tokens.status_code == 201, tokens.text
    assert [t["id"] for t in listed.json()["items"]] == [tokens.json()["id"]]
