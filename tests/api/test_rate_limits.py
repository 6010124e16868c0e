"""Request rate limits per key (token bucket) and rejected-key limits per client address."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from agent.config import Settings
from api.rate_limits import TokenBuckets, retry_after_header
from tests.api.conftest import ApiUser, RunningApi

ApiFactory = Callable[[Settings], Awaitable[RunningApi]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_the_sustained_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)

    burst = [buckets.take("k") for _ in range(3)]
    refused = buckets.take("k")
    other = buckets.take("other")
    clock.now += 0.5
    refilled = buckets.take("k")
    again = buckets.take("k")

    assert burst == [None, None, None]
    assert refused == pytest.approx(0.5)
    assert other is None
    assert refilled is None
    assert again == pytest.approx(0.5)


def test_bucket_never_exceeds_its_burst_and_zero_rate_disables() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=1.0, burst=2, clock=clock)
    buckets.take("k")
    clock.now += 1_000
    assert [buckets.take("k") is None for _ in range(3)] == [True, True, False]
    off = TokenBuckets(rate=0.0, burst=1)
    assert all(off.take("k") is None for _ in range(1_000))
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"


async def test_a_key_over_its_rate_gets_429_with_retry_after(
    api_factory: ApiFactory, api_settings: Settings, alice: ApiUser, bob: ApiUser
) -> None:
    api = await api_factory(
        api_settings.model_copy(update={"rate_limit_per_second": 0.5, "rate_limit_burst": 3})
    )
    async with api.client(alice.key) as http, api.client(bob.key) as other:
        allowed = [(await http.get("/v1/tasks")).status_code for _ in range(3)]
        limited = await http.get("/v1/tasks")
        bobs = await other.get("/v1/tasks")

    assert allowed == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    error = limited.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"] == {"retry_after_seconds": 2}
    assert bobs.status_code == 200


async def test_rejected_keys_are_limited_per_address(
    api_factory: ApiFactory, api_settings: Settings, alice: ApiUser, bob: ApiUser
) -> None:
    api = await api_factory(
        api_settings.model_copy(update={"auth_failures_per_minute": 1.0, "auth_failure_burst": 3})
    )
    async with api.client(alice.key) as known:
        assert (await known.get("/v1/tasks")).status_code == 200  # cached as valid
        async with api.client("agk_" + "x" * 32) as guesser, api.client() as anonymous:
            rejected = [(await guesser.get("/v1/tasks")).status_code for _ in range(3)]
            without_key = [(await anonymous.get("/v1/tasks")).status_code for _ in range(5)]
            blocked = await guesser.get("/v1/tasks")
        async with api.client(bob.key) as unknown_here:
            bob_blocked = await unknown_here.get("/v1/tasks")
        alice_still = await known.get("/v1/tasks")

    assert rejected == [401, 401, 401]
    assert without_key == [401] * 5
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "rate_limited"
    assert int(blocked.headers["retry-after"]) >= 1
    assert bob_blocked.status_code == 429
    assert alice_still.status_code == 200


async def test_429_is_declared_on_authenticated_routes(api: RunningApi) -> None:
    async with api.client() as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
    assert "429" in paths["/v1/tasks"]["post"]["responses"]
    assert "429" in paths["/v1/admin/keys"]["get"]["responses"]
