"""The API key, the LLM key and the database password never show up where they should not.

Looked for in every process log of a DEBUG-level run, in every workflow history and in
the bodies of error responses.
"""

from __future__ import annotations

import httpx
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from agent.db.models import Task
from tests.chaos.clients import Api, new_tag
from tests.chaos.harness import DB_PASSWORD, LLM_API_KEY, Cluster


def _secrets(cluster: Cluster) -> dict[str, str]:
    return {
        "owner API key": cluster.users[0].key,
        "other API key": cluster.users[1].key,
        "LLM API key": LLM_API_KEY,
        "database password": DB_PASSWORD,
    }


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value in text]


async def _error_bodies(cluster: Cluster) -> list[str]:
    owner = cluster.users[0].key
    bodies: list[str] = []
    requests: list[tuple[str, str, dict[str, str], object]] = [
        ("GET", "/v1/tasks", {"Authorization": f"Bearer {owner}x"}, None),
        ("GET", "/v1/tasks", {"Authorization": f"Basic {owner}"}, None),
        ("GET", "/v1/tasks/not-a-uuid", {"Authorization": f"Bearer {owner}"}, None),
        ("GET", "/v1/tasks?cursor=" + owner, {"Authorization": f"Bearer {owner}"}, None),
        ("POST", "/v1/tasks", {"Authorization": f"Bearer {owner}"}, {"goal": owner, "x": 1}),
        ("POST", "/v1/prompts", {"Authorization": f"Bearer {owner}"}, {"name": owner}),
        ("GET", "/readyz", {}, None),
        ("GET", "/openapi.json", {}, None),
    ]
    async with httpx.AsyncClient(base_url=cluster.api_url, timeout=30.0) as http:
        for method, path, headers, body in requests:
            response = await http.request(method, path, headers=headers, json=body)
            if path not in {"/readyz", "/openapi.json"}:
                assert response.status_code >= httpx.codes.BAD_REQUEST, (path, response.text)
            bodies.append(response.text)
    url = f"{cluster.ws_url}/v1/tasks/00000000-0000-0000-0000-000000000000/events/ws"
    async with connect(f"{url}?token={owner}") as ws:
        try:
            async for raw in ws:
                bodies.append(str(raw))
        except ConnectionClosed:
            pass
        bodies.append(ws.close_reason or "")
    return bodies


async def test_secrets_stay_out_of_logs_histories_and_error_bodies(
    security_cluster: Cluster,
) -> None:
    # Arrange: a whole task at DEBUG level, including an LLM fault and its retry.
    secrets = _secrets(security_cluster)
    api = Api(security_cluster.api_url, security_cluster.users[0].key)
    try:
        task_id = await api.create_task(
            f"Summarise a recipe [milestones=2][fault=500][fault_role=worker][fault_count=1] "
            f"{new_tag()}",
            complexity="simple",
        )
        await api.wait_status(task_id)
    finally:
        await api.aclose()

    # Act
    bodies = await _error_bodies(security_cluster)
    client = await security_cluster.temporal()
    async with security_cluster.db().session() as session:
        workflow_ids = list((await session.execute(select(Task.workflow_id))).scalars())
    histories = []
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        histories.append(b"".join(e.SerializeToString() for e in history.events))
    logs = security_cluster.all_logs()

    # Assert
    assert "DEBUG" in logs.upper()
    assert task_id is not None
    assert _leaks(logs, secrets) == []
    assert [(i, _leaks(h.decode(errors="replace"), secrets)) for i, h in enumerate(histories)] == [
        (i, []) for i in range(len(histories))
    ]
    assert [_leaks(b, secrets) for b in bodies] == [[] for _ in bodies]
