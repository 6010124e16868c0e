"""Admin key routes, expiry, last use, and revocation reaching REST and open sockets."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from agent.contract.protocol import CloseCode
from agent.db.models import ApiKey
from agent.db.session import DatabaseSessionManager
from agent.repositories.api_keys import ApiKeyRepository
from api.auth import AUTH_CACHE_TTL_SECONDS, KEY_RECHECK_SECONDS
from tests.api.conftest import PEPPER, ApiUser, RunningApi

CLOSE_WAIT_SECONDS = KEY_RECHECK_SECONDS + AUTH_CACHE_TTL_SECONDS + 5.0


async def _session_socket(api: RunningApi, key: str) -> ClientConnection:
    url = f"{api.ws_url}/v1/sessions/{uuid.uuid4()}/events/ws"
    return await connect(url, additional_headers={"Authorization": f"Bearer {key}"})


async def _closed_after(ws: ClientConnection) -> tuple[int | None, float]:
    """Read until the server closes; the close code and how long that took."""
    started = time.monotonic()
    async with asyncio.timeout(CLOSE_WAIT_SECONDS):
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
    return ws.close_code, time.monotonic() - started


async def test_admin_routes_refuse_a_non_admin_key(api: RunningApi, alice: ApiUser) -> None:
    async with api.client(alice.key) as http:
        listed = await http.get("/v1/admin/keys")
        created = await http.post("/v1/admin/keys", json={"user": "mallory", "is_admin": True})

    assert listed.status_code == created.status_code == 403
    assert listed.json()["error"]["code"] == "forbidden"


async def test_create_shows_the_key_once_and_listings_only_its_prefix(
    api: RunningApi, operator: ApiUser
) -> None:
    async with api.client(operator.key) as admin:
        created = await admin.post("/v1/admin/keys", json={"user": "dana", "name": "ci"})
        listed = await admin.get("/v1/admin/keys", params={"user": "dana"})
    key = created.json()["key"]
    async with api.client(key) as dana:
        works = await dana.get("/v1/tasks")

    assert created.status_code == 201, created.text
    assert key.startswith(created.json()["prefix"])
    assert [item["prefix"] for item in listed.json()["items"]] == [created.json()["prefix"]]
    assert key not in listed.text
    assert works.status_code == 200


async def test_revoked_key_gets_401_at_once_and_its_socket_closes_4401(
    api: RunningApi, operator: ApiUser, alice: ApiUser, session_manager: DatabaseSessionManager
) -> None:
    async with api.client(alice.key) as http:
        assert (await http.get("/v1/tasks")).status_code == 200  # resolved and cached
    ws = await _session_socket(api, alice.key)
    async with session_manager.session() as session:
        key_id = (
            await session.execute(select(ApiKey.id).where(ApiKey.user_id == alice.id))
        ).scalar_one()

    async with api.client(operator.key) as admin:
        revoked = await admin.post(f"/v1/admin/keys/{key_id}/revoke")
    async with api.client(alice.key) as http:
        after = await http.get("/v1/tasks")
    code, waited = await _closed_after(ws)

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert after.status_code == 401
    assert code == CloseCode.UNAUTHORIZED
    assert waited <= KEY_RECHECK_SECONDS + 2.0


async def test_key_revoked_by_another_process_closes_sockets_and_stops_rest(
    api: RunningApi, bob: ApiUser, session_manager: DatabaseSessionManager
) -> None:
    # `agent keys revoke` writes the database directly; this process never hears of it.
    ws = await _session_socket(api, bob.key)
    async with session_manager.session() as session:
        repo = ApiKeyRepository(session, PEPPER)
        grant = await repo.lookup(bob.key)
        assert grant is not None
        await repo.revoke(grant.key_id)
        await session.commit()

    code, waited = await _closed_after(ws)
    await asyncio.sleep(AUTH_CACHE_TTL_SECONDS)
    async with api.client(bob.key) as http:
        after = await http.get("/v1/tasks")

    assert code == CloseCode.UNAUTHORIZED
    assert waited <= KEY_RECHECK_SECONDS + 2.0
    assert after.status_code == 401


async def test_rotate_replaces_the_key(api: RunningApi, operator: ApiUser) -> None:
    async with api.client(operator.key) as admin:
        created = (await admin.post("/v1/admin/keys", json={"user": "erin"})).json()
        rotated = await admin.post(f"/v1/admin/keys/{created['id']}/rotate")
        again = await admin.post(f"/v1/admin/keys/{created['id']}/rotate")
    async with api.client(created["key"]) as old, api.client(rotated.json()["key"]) as new:
        old_answer = await old.get("/v1/tasks")
        new_answer = await new.get("/v1/tasks")

    assert rotated.status_code == 201, rotated.text
    assert rotated.json()["user_id"] == created["user_id"]
    assert old_answer.status_code == 401
    assert new_answer.status_code == 200
    assert again.status_code == 404


async def test_a_key_stops_working_when_it_expires(api: RunningApi, operator: ApiUser) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=2)
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with api.client(operator.key) as admin:
        expiring = (
            await admin.post("/v1/admin/keys", json={"user": "fay", "expires_at": soon.isoformat()})
        ).json()
        expired = (
            await admin.post("/v1/admin/keys", json={"user": "fay", "expires_at": past.isoformat()})
        ).json()
        naive = await admin.post(
            "/v1/admin/keys", json={"user": "fay", "expires_at": "2030-01-01T00:00:00"}
        )
    async with api.client(expiring["key"]) as http:
        before = await http.get("/v1/tasks")
        await asyncio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.5)
        after = await http.get("/v1/tasks")
    async with api.client(expired["key"]) as http:
        dead = await http.get("/v1/tasks")

    assert before.status_code == 200
    assert after.status_code == 401
    assert dead.status_code == 401
    assert naive.status_code == 422


async def test_last_use_is_recorded_once_a_minute(
    api: RunningApi, alice: ApiUser, session_manager: DatabaseSessionManager
) -> None:
    async with api.client(alice.key) as http:
        for _ in range(5):
            assert (await http.get("/v1/tasks")).status_code == 200

    async with session_manager.session() as session:
        used = (
            await session.execute(select(ApiKey.last_used_at).where(ApiKey.user_id == alice.id))
        ).scalar_one()
        repo = ApiKeyRepository(session, SecretStr(PEPPER.get_secret_value()))
        grant = await repo.lookup(alice.key)
        assert grant is not None
        rewritten = await repo.touch_last_used(grant.key_id)

    assert used is not None
    assert datetime.now(UTC) - used < timedelta(minutes=1)
    assert rewritten is False
