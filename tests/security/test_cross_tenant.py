"""A second user's key against every route and socket of the first user's task -> 404."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.chaos.harness import Cluster
from tests.security.conftest import OwnedTask

NOT_FOUND_CLOSE = 4404


def _routes(task: OwnedTask) -> list[tuple[str, str, dict[str, object] | None]]:
    base = f"/v1/tasks/{task.id}"
    return [
        ("GET", base, None),
        ("GET", f"{base}/events", None),
        ("GET", f"{base}/events?after_seq=0&limit=500", None),
        ("GET", f"{base}/tool-calls", None),
        ("POST", f"{base}/resume", {"breakpoint_id": task.breakpoint_id, "action": "continue"}),
        ("POST", f"{base}/resume", {"breakpoint_id": task.breakpoint_id, "action": "abort"}),
        (
            "POST",
            f"{base}/resume",
            {"breakpoint_id": task.breakpoint_id, "action": "edit", "arguments": {"x": 1}},
        ),
        ("POST", f"{base}/cancel", None),
    ]


@pytest.mark.parametrize("index", range(8))
async def test_other_users_key_gets_404_on_every_route(
    security_cluster: Cluster, owned_task: OwnedTask, index: int
) -> None:
    method, path, body = _routes(owned_task)[index]
    intruder = security_cluster.users[1]
    async with httpx.AsyncClient(
        base_url=security_cluster.api_url,
        headers={"Authorization": f"Bearer {intruder.key}"},
        timeout=30.0,
    ) as http:
        response = await http.request(method, path, json=body)

    assert response.status_code == httpx.codes.NOT_FOUND
    assert owned_task.tag not in response.text
    assert owned_task.breakpoint_id not in response.text


async def test_other_user_cannot_list_or_filter_the_task(
    security_cluster: Cluster, owned_task: OwnedTask
) -> None:
    intruder = security_cluster.users[1]
    async with httpx.AsyncClient(
        base_url=security_cluster.api_url,
        headers={"Authorization": f"Bearer {intruder.key}"},
        timeout=30.0,
    ) as http:
        listed = await http.get("/v1/tasks", params={"limit": 200})
        by_session = await http.get("/v1/tasks", params={"session_id": str(owned_task.session_id)})

    assert listed.status_code == by_session.status_code == httpx.codes.OK
    for response in (listed, by_session):
        assert str(owned_task.id) not in response.text
        assert owned_task.tag not in response.text


async def test_task_socket_closes_4404_for_another_user(
    security_cluster: Cluster, owned_task: OwnedTask
) -> None:
    intruder = security_cluster.users[1]
    url = f"{security_cluster.ws_url}/v1/tasks/{owned_task.id}/events/ws?after_seq=0"
    received: list[str] = []
    async with connect(url, additional_headers={"Authorization": f"Bearer {intruder.key}"}) as ws:
        try:
            async for raw in ws:
                received.append(str(raw))
        except ConnectionClosed:
            pass
        code = ws.close_code

    assert code == NOT_FOUND_CLOSE
    assert not any(owned_task.tag in r or str(owned_task.id) in r for r in received)


async def test_token_query_parameter_of_another_user_gets_4404(
    security_cluster: Cluster, owned_task: OwnedTask
) -> None:
    intruder = security_cluster.users[1]
    url = (
        f"{security_cluster.ws_url}/v1/tasks/{owned_task.id}/events/ws"
        f"?after_seq=0&token={intruder.key}"
    )
    async with connect(url) as ws:
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
        code = ws.close_code

    assert code == NOT_FOUND_CLOSE


async def test_session_socket_streams_nothing_of_another_users_task(
    security_cluster: Cluster, owned_task: OwnedTask
) -> None:
    intruder = security_cluster.users[1]
    url = f"{security_cluster.ws_url}/v1/sessions/{owned_task.session_id}/events/ws"
    messages: list[dict[str, object]] = []
    async with connect(url, additional_headers={"Authorization": f"Bearer {intruder.key}"}) as ws:
        # The backfill ends with `caught_up`; everything before it is what was leaked.
        async for raw in ws:
            message = json.loads(raw)
            messages.append(message)
            if message.get("kind") == "caught_up":
                break

    leaked = [m for m in messages if m.get("kind") in {"event", "ephemeral"}]
    assert leaked == []
    assert owned_task.tag not in json.dumps(messages)


async def test_unknown_task_and_foreign_task_answer_alike(
    security_cluster: Cluster, owned_task: OwnedTask
) -> None:
    intruder = security_cluster.users[1]
    async with httpx.AsyncClient(
        base_url=security_cluster.api_url,
        headers={"Authorization": f"Bearer {intruder.key}"},
        timeout=30.0,
    ) as http:
        foreign = await http.get(f"/v1/tasks/{owned_task.id}")
        unknown = await http.get(f"/v1/tasks/{uuid.uuid4()}")

    assert foreign.status_code == unknown.status_code == httpx.codes.NOT_FOUND
    assert foreign.json()["error"]["code"] == unknown.json()["error"]["code"]
