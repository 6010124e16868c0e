"""Oversized and unstorable inputs get 413 or 422: never a 500, never a stored row."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import pytest
from sqlalchemy import func, select

from agent.db.models import Prompt, Task
from tests.chaos.harness import Cluster
from tests.security.conftest import OwnedTask

TEN_MB = 10 * 1024 * 1024
MANY_MILESTONES = 10_000
DEEP_NESTING = 100_000
REJECTED = {httpx.codes.REQUEST_ENTITY_TOO_LARGE, httpx.codes.UNPROCESSABLE_ENTITY}


async def _rows(cluster: Cluster) -> tuple[int, int]:
    async with cluster.db().session() as session:
        tasks = await session.scalar(select(func.count()).select_from(Task))
        prompts = await session.scalar(select(func.count()).select_from(Prompt))
    return int(tasks or 0), int(prompts or 0)


def _client(cluster: Cluster, key: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=cluster.api_url,
        headers={"Authorization": f"Bearer {key or cluster.users[0].key}"},
        timeout=60.0,
    )


def _deep_json(depth: int) -> str:
    return '{"goal": "deep", "budget": ' + "[" * depth + "]" * depth + "}"


BODIES = {
    "goal of 10 MB": json.dumps({"goal": "g" * TEN_MB}),
    "deep JSON": _deep_json(DEEP_NESTING),
    "deep JSON under the size limit": _deep_json(2_000),
    "goal with a NUL character": json.dumps({"goal": "before\u0000after"}),
    "goal with a lone surrogate": '{"goal": "before \\ud800 after"}',
}


SEND_CHUNK_BYTES = 64 * 1024
EARLY_ANSWER_SECONDS = 2.0


async def _post_raw(cluster: Cluster, path: str, body: bytes) -> tuple[int, bytes]:
    """POST over a raw socket, taking the answer as soon as the server gives one.

    A server may answer 413 from the headers alone and close before taking a 10 MB body;
    a client that insists on sending it all first then sees a reset, not the answer.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", cluster.api_port)
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {cluster.users[0].key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), EARLY_ANSWER_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ConnectionError):
            for start in range(0, len(body), SEND_CHUNK_BYTES):
                writer.write(body[start : start + SEND_CHUNK_BYTES])
                await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
    rest = b""
    with contextlib.suppress(ConnectionError):
        rest = await reader.read()
    writer.close()
    return int(head.split(b" ", 2)[1]), rest


@pytest.mark.parametrize("name", list(BODIES))
async def test_bad_task_bodies_are_rejected_without_a_row(
    security_cluster: Cluster, name: str
) -> None:
    before = await _rows(security_cluster)
    status, body = await _post_raw(security_cluster, "/v1/tasks", BODIES[name].encode())
    async with _client(security_cluster) as http:
        health = await http.get("/healthz")

    assert status in REJECTED, body[:500]
    assert b'"error"' in body
    assert health.status_code == httpx.codes.OK
    assert security_cluster.api is not None
    assert security_cluster.api.alive
    assert await _rows(security_cluster) == before


@pytest.mark.parametrize(
    "content", ["text\u0000with NUL", "lone \ud800 surrogate"], ids=["nul", "surrogate"]
)
async def test_unstorable_prompt_text_is_rejected(
    security_cluster: Cluster, admin_key: str, content: str
) -> None:
    before = await _rows(security_cluster)
    body = json.dumps({"name": "unstorable", "content": content})
    async with _client(security_cluster, admin_key) as http:
        response = await http.post(
            "/v1/prompts", content=body, headers={"Content-Type": "application/json"}
        )

    assert response.status_code == httpx.codes.UNPROCESSABLE_ENTITY, response.text[:500]
    assert await _rows(security_cluster) == before


async def test_plan_edit_with_10000_milestones_is_rejected(
    security_cluster: Cluster, owned_task: OwnedTask
) -> None:
    edits = {
        "add": [
            {"key": f"x{i}", "title": f"extra {i}", "depends_on": []}
            for i in range(MANY_MILESTONES)
        ]
    }
    body = {"breakpoint_id": owned_task.breakpoint_id, "action": "continue", "edits": edits}
    async with _client(security_cluster) as http:
        response = await http.post(f"/v1/tasks/{owned_task.id}/resume", json=body)
        task = await http.get(f"/v1/tasks/{owned_task.id}")

    # Within the body limits but past the plan size limit: the workflow's validator refuses
    # it (409) naming the limit, and the task stays as it was.
    assert response.status_code == httpx.codes.CONFLICT, response.text[:500]
    assert "AGENT_MAX_PLAN_MILESTONES" in response.json()["error"]["message"]
    assert task.json()["status"] == "paused"
    assert len(task.json()["milestones"]) == 2


async def test_plan_edit_with_a_nul_character_is_rejected(
    security_cluster: Cluster, owned_task: OwnedTask
) -> None:
    edits = {"add": [{"key": "x1", "title": "bad\u0000title", "depends_on": []}]}
    body = {"breakpoint_id": owned_task.breakpoint_id, "action": "continue", "edits": edits}
    async with _client(security_cluster) as http:
        response = await http.post(f"/v1/tasks/{owned_task.id}/resume", json=body)
        task = await http.get(f"/v1/tasks/{owned_task.id}")

    assert response.status_code == httpx.codes.UNPROCESSABLE_ENTITY, response.text[:500]
    assert task.json()["status"] == "paused"
