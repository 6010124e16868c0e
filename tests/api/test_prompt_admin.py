"""Only an admin key publishes system prompts; any key reads them."""

from __future__ import annotations

from sqlalchemy import func, select

from agent.db.models import Prompt
from agent.db.session import DatabaseSessionManager
from tests.api.conftest import ApiUser, RunningApi


async def _versions(manager: DatabaseSessionManager, name: str) -> int:
    async with manager.session() as session:
        count = await session.scalar(select(func.count()).where(Prompt.name == name))
    return int(count or 0)


async def test_a_non_admin_key_gets_403_and_stores_nothing(
    api: RunningApi, alice: ApiUser, session_manager: DatabaseSessionManager
) -> None:
    before = await _versions(session_manager, "planner")
    async with api.client(alice.key) as http:
        response = await http.post("/v1/prompts", json={"name": "planner", "content": "evil"})
        read = await http.get("/v1/prompts/planner")

    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert "admin" in error["message"]
    assert "agent keys create --admin" in error["message"]
    assert await _versions(session_manager, "planner") == before
    assert read.status_code == 200


async def test_an_admin_key_publishes_the_next_version(
    api: RunningApi, operator: ApiUser, session_manager: DatabaseSessionManager
) -> None:
    before = await _versions(session_manager, "planner")
    async with api.client(operator.key) as http:
        response = await http.post("/v1/prompts", json={"name": "planner", "content": "better"})

    assert response.status_code == 201, response.text
    assert response.json()["version"] == before + 1


async def test_403_is_declared_in_the_schema(api: RunningApi) -> None:
    async with api.client() as http:
        schema = (await http.get("/openapi.json")).json()
    assert "403" in schema["paths"]["/v1/prompts"]["post"]["responses"]
