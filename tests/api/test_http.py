"""HTTP behaviour over real TCP: auth, the error shape, prompts, health, task reads."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from agent.events.types import TaskStatus
from tests.api.conftest import ApiUser, RunningApi


def assert_error_shape(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str)
    if code is not None:
        assert body["error"]["code"] == code


async def test_health_needs_no_key_and_readyz_reports_components(api: RunningApi) -> None:
    async with api.client() as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    components = ready.json()["components"]
    assert {"postgres", "temporal", "redis", "event_listener"} <= set(components)
    assert all(c["ok"] for c in components.values())


NO_SUCH_TASK = "5b0c3f1e-0000-4000-8000-000000000000"
"""A task id no test creates (fixed: test ids must be the same in every xdist worker)."""


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/tasks"),
        ("POST", "/v1/tasks"),
        ("GET", f"/v1/tasks/{NO_SUCH_TASK}"),
        ("GET", f"/v1/tasks/{NO_SUCH_TASK}/events"),
        ("POST", f"/v1/tasks/{NO_SUCH_TASK}/resume"),
        ("POST", f"/v1/tasks/{NO_SUCH_TASK}/cancel"),
        ("GET", "/v1/prompts"),
        ("POST", "/v1/prompts"),
        ("GET", "/v1/prompts/x"),
    ],
)
async def test_every_endpoint_but_health_requires_a_key(
    api: RunningApi, method: str, path: str
) -> None:
    async with api.client() as anonymous, api.client("agk_not-a-real-key") as forged:
        missing = await anonymous.request(method, path, json={})
        wrong = await forged.request(method, path, json={})
    assert_error_shape(missing, 401, "unauthorized")
    assert_error_shape(wrong, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"


async def test_bad_input_is_422_with_the_field(
    api: RunningApi, alice: ApiUser, operator: ApiUser
) -> None:
    async with api.client(alice.key) as client, api.client(operator.key) as admin:
        empty_goal = await client.post("/v1/tasks", json={"goal": ""})
        bad_budget = await client.post(
            "/v1/tasks", json={"goal": "x", "budget": {"max_cost_usd": -1}}
        )
        bad_parallel = await client.post("/v1/tasks", json={"goal": "x", "max_parallel": 1000})
        unknown = await client.post("/v1/tasks", json={"goal": "x", "surprise": 1})
        not_json = await client.post(
            "/v1/tasks", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        bad_uuid = await client.get("/v1/tasks/not-a-uuid")
        bad_limit = await client.get("/v1/tasks", params={"limit": 0})
        bad_cursor = await client.get("/v1/tasks", params={"cursor": "garbage"})
        bad_name = await admin.post("/v1/prompts", json={"name": "bad name!", "content": "x"})
        bad_key = await client.post(
            "/v1/tasks", json={"goal": "x"}, headers={"Idempotency-Key": "bad key with spaces"}
        )
    for response in (empty_goal, bad_budget, bad_parallel, unknown, not_json, bad_uuid, bad_limit):
        assert_error_shape(response, 422)
    assert_error_shape(bad_cursor, 422, "invalid_cursor")
    assert_error_shape(bad_name, 422, "validation_error")
    assert_error_shape(bad_key, 422)
    locs = [d["loc"] for d in empty_goal.json()["error"]["details"]]
    assert ["body", "goal"] in locs
    assert ["body", "budget", "max_cost_usd"] in [
        d["loc"] for d in bad_budget.json()["error"]["details"]
    ]


async def _raw_post(
    api: RunningApi, key: str, head: str, body: bytes
) -> tuple[int, dict[str, Any]]:
    """Send a request over a raw socket and read the answer, however much body is left."""
    import asyncio
    import contextlib
    import json

    host, port = api.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = (
        f"POST /v1/tasks HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\n{head}\r\n"
    ).encode()
    writer.write(request + body)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    raw = await asyncio.wait_for(reader.read(65536), 30)
    writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload)


async def test_oversized_body_is_413_before_parsing(api: RunningApi, alice: ApiUser) -> None:
    # Declared 10 MB, only a few bytes sent: refused on the header alone.
    declared = await _raw_post(
        api, alice.key, f"Content-Length: {10 * 1024 * 1024}\r\n", b'{"goal": "xxxx'
    )
    # Chunked (no length): refused once the count passes the limit.
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20))
    streamed = await _raw_post(api, alice.key, "Transfer-Encoding: chunked\r\n", chunks)
    for status, body in (declared, streamed):
        assert status == 413
        assert body["error"]["code"] == "payload_too_large"
        assert set(body["error"]) == {"code", "message", "details"}


async def test_unknown_route_and_method_use_the_shape(api: RunningApi, alice: ApiUser) -> None:
    async with api.client(alice.key) as client:
        missing = await client.get("/v1/nothing-here")
        wrong_method = await client.delete("/v1/tasks")
    assert_error_shape(missing, 404, "not_found")
    assert_error_shape(wrong_method, 405, "method_not_allowed")


async def test_request_id_is_echoed(api: RunningApi) -> None:
    async with api.client() as client:
        given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        generated = await client.get("/healthz")
    assert given.headers["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) == 32


async def test_prompts_version_and_read_through_cache(
    api: RunningApi, operator: ApiUser, redis_client: object
) -> None:
    async with api.client(operator.key) as client:
        first = await client.post(
            "/v1/prompts", json={"name": "greet", "content": "Hello", "category": "demo"}
        )
        second = await client.post("/v1/prompts", json={"name": "greet", "content": "Hi"})
        same = await client.post("/v1/prompts", json={"name": "greet", "content": "Hi"})
        latest = await client.get("/v1/prompts/greet")
        v1 = await client.get("/v1/prompts/greet", params={"version": 1})
        v1_again = await client.get("/v1/prompts/greet", params={"version": 1})
        missing_version = await client.get("/v1/prompts/greet", params={"version": 9})
        missing = await client.get("/v1/prompts/nope")
        listing = await client.get("/v1/prompts")
    assert first.status_code == 201
    assert first.json()["version"] == 1
    assert second.status_code == 201
    assert second.json()["version"] == 2
    assert same.status_code == 200
    assert same.json()["version"] == 2
    assert latest.json()["content"] == "Hi"
    assert v1.json()["content"] == "Hello"
    assert v1_again.json() == v1.json()
    assert_error_shape(missing_version, 404, "not_found")
    assert_error_shape(missing, 404, "not_found")
    names = [item["name"] for item in listing.json()["items"]]
    assert "greet" in names
    cached = await redis_client.get("prompt:greet:v1")  # type: ignore[attr-defined]
    assert cached is not None


async def test_create_get_list_and_idempotent_create(
    api: RunningApi, alice: ApiUser, temporal_client: Client
) -> None:
    body = {"goal": "write a haiku [milestones=2]", "max_parallel": 2}
    async with api.client(alice.key) as client:
        created = await client.post("/v1/tasks", json=body, headers={"Idempotency-Key": "k-1"})
        replayed = await client.post("/v1/tasks", json=body, headers={"Idempotency-Key": "k-1"})
        other_body = await client.post(
            "/v1/tasks", json={"goal": "different"}, headers={"Idempotency-Key": "k-1"}
        )
        task_id = created.json()["id"]
        fetched = await client.get(f"/v1/tasks/{task_id}")
        listed = await client.get("/v1/tasks", params={"status": "pending"})
    assert created.status_code == 201, created.text
    assert replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["id"] == task_id
    assert_error_shape(other_body, 409, "idempotency_key_reused")
    task = fetched.json()
    assert task["status"] == TaskStatus.PENDING
    assert task["links"]["events"] == f"/v1/tasks/{task_id}/events"
    assert task["workflow_id"] == f"task-{task_id}"
    assert task["milestones"] == []
    assert [t["id"] for t in listed.json()["items"]] == [task_id]
    description = await temporal_client.get_workflow_handle(f"task-{task_id}").describe()
    assert description.task_queue == api.settings.task_queue


async def test_concurrent_creates_with_one_key_make_one_task(
    api: RunningApi, alice: ApiUser
) -> None:
    import asyncio

    body = {"goal": "race me"}
    async with api.client(alice.key) as client:
        responses = await asyncio.gather(
            *(
                client.post("/v1/tasks", json=body, headers={"Idempotency-Key": "same"})
                for _ in range(8)
            )
        )
        listed = await client.get("/v1/tasks")
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(listed.json()["items"]) == 1


async def test_list_pages_with_keyset_cursor(api: RunningApi, alice: ApiUser) -> None:
    session_id = str(uuid.uuid4())
    async with api.client(alice.key) as client:
        ids = []
        for i in range(5):
            r = await client.post("/v1/tasks", json={"goal": f"g{i}", "session_id": session_id})
            ids.append(r.json()["id"])
        await client.post("/v1/tasks", json={"goal": "elsewhere"})
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 2, "session_id": session_id}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/v1/tasks", params=params)).json()
            seen += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert seen == list(reversed(ids))


async def test_other_users_task_is_404_everywhere(
    api: RunningApi, alice: ApiUser, bob: ApiUser
) -> None:
    async with api.client(alice.key) as a, api.client(bob.key) as b:
        task_id = (await a.post("/v1/tasks", json={"goal": "mine"})).json()["id"]
        responses = [
            await b.get(f"/v1/tasks/{task_id}"),
            await b.get(f"/v1/tasks/{task_id}/events"),
            await b.post(f"/v1/tasks/{task_id}/resume", json={"breakpoint_id": "bp-1"}),
            await b.post(f"/v1/tasks/{task_id}/cancel"),
        ]
        bob_list = await b.get("/v1/tasks")
        still_alive = await a.get(f"/v1/tasks/{task_id}")
    for response in responses:
        assert_error_shape(response, 404, "not_found")
    assert bob_list.json()["items"] == []
    assert still_alive.json()["status"] == TaskStatus.PENDING


async def test_resume_of_a_task_that_is_not_paused_is_409(api: RunningApi, alice: ApiUser) -> None:
    async with api.client(alice.key) as client:
        task_id = (await client.post("/v1/tasks", json={"goal": "g"})).json()["id"]
        response = await client.post(
            f"/v1/tasks/{task_id}/resume", json={"breakpoint_id": "bp", "action": "continue"}
        )
    assert_error_shape(response, 409, "task_not_paused")


async def test_get_task_issues_a_fixed_number_of_statements(
    api: RunningApi, alice: ApiUser, session_manager: object
) -> None:
    from sqlalchemy import event

    from agent.contract.task import MilestoneSpec
    from agent.repositories.milestones import MilestoneRepository

    counts: dict[int, int] = {}
    pool = api.app.state.db.engine.sync_engine.pool
    statements: list[str] = []

    # Counted at the driver: the read runs on asyncpg directly, past SQLAlchemy's events.
    def log(record: Any) -> None:
        statements.append(record.query)

    def watch(dbapi_connection: Any, _record: object, _proxy: object) -> None:
        dbapi_connection.driver_connection.add_query_logger(log)

    def unwatch(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.driver_connection.remove_query_logger(log)

    async with api.client(alice.key) as client:
        for size in (1, 50):
            task_id = (await client.post("/v1/tasks", json={"goal": f"plan {size}"})).json()["id"]
            async with api.app.state.db.session() as session:
                await MilestoneRepository(session).replace_plan(
                    uuid.UUID(task_id),
                    [MilestoneSpec(key=f"m{i}", title=f"M{i}") for i in range(size)],
                )
                await session.commit()
            await client.get(f"/v1/tasks/{task_id}")  # warm the key cache
            event.listen(pool, "checkout", watch)
            event.listen(pool, "checkin", unwatch)
            try:
                response = await client.get(f"/v1/tasks/{task_id}")
            finally:
                event.remove(pool, "checkout", watch)
                event.remove(pool, "checkin", unwatch)
            assert len(response.json()["milestones"]) == size
            counts[size] = len(statements)
            statements.clear()
    assert counts[1] == counts[50] == 1
