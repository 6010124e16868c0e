"""Event sockets over real TCP: backfill + live without duplicates or gaps, reconnects,
a killed listener connection, slow consumers, auth and per-user scoping."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import asyncpg
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from agent.config import Settings, to_libpq_url
from agent.contract.protocol import CloseCode
from agent.db.session import DatabaseSessionManager
from agent.events.notify import publish_ephemeral
from agent.events.types import AgentActivityEvent, EventType
from agent.repositories.tasks import TaskRepository
from tests.api.conftest import ApiUser, EventAppender, RunningApi

WAIT_SECONDS = 30.0


async def make_task(
    manager: DatabaseSessionManager, user: ApiUser, session_id: UUID | None = None
) -> UUID:
    async with manager.session() as session:
        task = await TaskRepository(session).create(
            user_id=user.id, goal="stream me", session_id=session_id
        )
        await session.commit()
        return task.id


async def open_socket(
    api: RunningApi, path: str, key: str | None, *, use_query_token: bool = False, **params: Any
) -> ClientConnection:
    query = dict(params)
    headers = {}
    if key and use_query_token:
        query["token"] = key
    elif key:
        headers["Authorization"] = f"Bearer {key}"
    url = f"{api.ws_url}{path}"
    if query:
        url += "?" + urlencode(query)
    return await connect(url, additional_headers=headers, open_timeout=WAIT_SECONDS)


async def receive(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_SECONDS):
        message: dict[str, Any] = json.loads(await ws.recv())
        return message


async def read_stored_until(ws: ClientConnection, last_cursor: int) -> list[dict[str, Any]]:
    """Read messages until a stored event with cursor `last_cursor`; return stored ones."""
    stored: list[dict[str, Any]] = []
    while True:
        message = await receive(ws)
        if message["kind"] == "event":
            stored.append(message)
            if message["cursor"] >= last_cursor:
                return stored


async def close_code(ws: ClientConnection) -> int | None:
    async with asyncio.timeout(WAIT_SECONDS):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None


def seqs(messages: list[dict[str, Any]]) -> list[int]:
    return [m["event"]["sequence_number"] for m in messages]


async def test_backfill_then_live_then_resume_sees_the_whole_log_once(
    api: RunningApi,
    alice: ApiUser,
    session_manager: DatabaseSessionManager,
    append_events: EventAppender,
) -> None:
    task_id = await make_task(session_manager, alice)
    await append_events(task_id, 5)
    path = f"/v1/tasks/{task_id}/events/ws"

    first = await open_socket(api, path, alice.key, after_seq=0)
    seen = await read_stored_until(first, 5)
    assert (await receive(first)) == {"kind": "caught_up", "cursor": 5}
    await append_events(task_id, 3)
    seen += await read_stored_until(first, 8)
    await first.close()  # disconnect mid-task
    await append_events(task_id, 4)  # missed while away
    second = await open_socket(api, path, alice.key, after_seq=seen[-1]["cursor"])
    seen += await read_stored_until(second, 12)
    await append_events(task_id, 2)
    seen += await read_stored_until(second, 14)
    await second.close()

    async with session_manager.session() as session:
        from agent.repositories.events import EventRepository

        stored = await EventRepository(session).list_after(task_id, 0, 500)
    assert seqs(seen) == [e.sequence_number for e in stored] == list(range(1, 15))
    assert [m["cursor"] for m in seen] == seqs(seen)
    assert [m["event"]["message"] for m in seen] == [e.message for e in stored]


async def test_events_committed_during_connects_are_neither_lost_nor_doubled(
    api: RunningApi,
    alice: ApiUser,
    session_manager: DatabaseSessionManager,
    append_events: EventAppender,
) -> None:
    task_id = await make_task(session_manager, alice)
    path = f"/v1/tasks/{task_id}/events/ws"
    batches = 40

    async def writer() -> None:
        for _ in range(batches):
            await append_events(task_id, 2)
            await asyncio.sleep(0.005)

    writing = asyncio.create_task(writer())
    sockets = []
    for after in (0, 0, 3, 7):  # connect at different points while the writer runs
        sockets.append((after, await open_socket(api, path, alice.key, after_seq=after)))
        await asyncio.sleep(0.02)
    await writing
    for after, ws in sockets:
        got = await read_stored_until(ws, batches * 2)
        await ws.close()
        assert seqs(got) == list(range(after + 1, batches * 2 + 1))


async def test_stream_survives_a_killed_listener_connection(
    api: RunningApi,
    alice: ApiUser,
    session_manager: DatabaseSessionManager,
    append_events: EventAppender,
    database_url: str,
) -> None:
    task_id = await make_task(session_manager, alice)
    ws = await open_socket(api, f"/v1/tasks/{task_id}/events/ws", alice.key)
    await append_events(task_id, 3)
    got = await read_stored_until(ws, 3)
    listener = api.app.state.listener
    pid = listener.backend_pid
    assert pid is not None

    admin = await asyncpg.connect(to_libpq_url(database_url))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    for _ in range(5):
        await append_events(task_id, 2)
    got += await read_stored_until(ws, 13)
    await ws.close()

    assert seqs(got) == list(range(1, 14))
    assert listener.reconnect_count >= 1


async def _stalled_client(port: int, path: str, key: str) -> socket.socket:
    """Open a socket, do the WebSocket handshake by hand, then never read again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A tiny receive window: the server's writes back up almost at once.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    handshake = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {key}\r\n\r\n"
    )
    await loop.sock_sendall(sock, handshake.encode())
    return sock


async def _drain_until_eof(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    async with asyncio.timeout(WAIT_SECONDS):
        while chunk := await loop.sock_recv(sock, 1 << 20):
            data += chunk
    return data


async def test_a_stalled_client_does_not_delay_a_healthy_one(
    api_factory: Callable[[Settings], Awaitable[RunningApi]],
    api_settings: Settings,
    alice: ApiUser,
    session_manager: DatabaseSessionManager,
    append_events: EventAppender,
) -> None:
    api = await api_factory(api_settings.model_copy(update={"ws_queue_size": 10}))
    task_id = await make_task(session_manager, alice)
    path = f"/v1/tasks/{task_id}/events/ws"
    port = int(api.ws_url.rsplit(":", 1)[1])
    stalled = await _stalled_client(port, path, alice.key)
    try:
        healthy = await open_socket(api, path, alice.key)
        assert (await receive(healthy))["kind"] == "caught_up"
        manager = api.app.state.ws_manager
        async with asyncio.timeout(WAIT_SECONDS):
            while manager.subscription_count < 2:
                await asyncio.sleep(0.01)
        blob = {"blob": "x" * 48_000}  # 14 MB in all: more than the socket buffers hold

        # The healthy client reads while events are produced, as a live client does; only
        # the stalled one lets its socket back up.
        reader = asyncio.create_task(read_stored_until(healthy, 300))
        for _ in range(30):
            await append_events(task_id, 10, details=blob)
        got = await reader
        await healthy.close()

        assert seqs(got) == list(range(1, 301))
        # The stalled socket was cut off (code 4008, behind the data it never read), not
        # waited for: the server ends the connection.
        assert manager.slow_consumer_closes == 1
        tail = await _drain_until_eof(stalled)
    finally:
        stalled.close()
    # The last frame is a close frame (0x88) carrying code 4008 (0x0FA8).
    assert re.search(rb"\x88.\x0f\xa8", tail[-200:], re.DOTALL) is not None


async def test_llm_chunks_are_interleaved_live(
    api: RunningApi,
    alice: ApiUser,
    session_manager: DatabaseSessionManager,
    append_events: EventAppender,
) -> None:
    task_id = await make_task(session_manager, alice)
    ws = await open_socket(api, f"/v1/tasks/{task_id}/events/ws", alice.key)
    assert (await receive(ws))["kind"] == "caught_up"

    await append_events(task_id, 1)
    async with session_manager.session() as session:
        await publish_ephemeral(
            session,
            AgentActivityEvent(type=EventType.LLM_CHUNK, task_id=task_id, message="Hello"),
        )
        await session.commit()
    await append_events(task_id, 1)
    kinds = [await receive(ws) for _ in range(3)]
    await ws.close()

    # Stored events are read from the table, so a later one may overtake a chunk; the
    # chunk still arrives, live, and stored events stay in order.
    assert seqs([m for m in kinds if m["kind"] == "event"]) == [1, 2]
    chunk = next(m for m in kinds if m["kind"] == "ephemeral")
    assert chunk["event"]["message"] == "Hello"
    assert chunk["event"]["sequence_number"] is None


async def test_keepalive_ping_and_pong(
    api_factory: Callable[[Settings], Awaitable[RunningApi]],
    api_settings: Settings,
    alice: ApiUser,
    session_manager: DatabaseSessionManager,
) -> None:
    api = await api_factory(api_settings.model_copy(update={"ws_ping_interval_seconds": 0.2}))
    task_id = await make_task(session_manager, alice)
    ws = await open_socket(api, f"/v1/tasks/{task_id}/events/ws", alice.key)
    assert (await receive(ws))["kind"] == "caught_up"

    server_ping = await receive(ws)
    await ws.send(json.dumps({"kind": "ping"}))
    replies = [await receive(ws) for _ in range(3)]
    await ws.close()

    assert server_ping == {"kind": "ping"}
    assert {"kind": "pong"} in replies


async def test_socket_auth_and_scoping(
    api: RunningApi,
    alice: ApiUser,
    bob: ApiUser,
    session_manager: DatabaseSessionManager,
    append_events: EventAppender,
) -> None:
    task_id = await make_task(session_manager, alice)
    await append_events(task_id, 2)
    path = f"/v1/tasks/{task_id}/events/ws"

    anonymous = await open_socket(api, path, None)
    forged = await open_socket(api, path, "agk_forged")
    other_user = await open_socket(api, path, bob.key)
    missing = await open_socket(api, f"/v1/tasks/{uuid.uuid4()}/events/ws", alice.key)
    by_query = await open_socket(api, path, alice.key, use_query_token=True)

    assert await close_code(anonymous) == CloseCode.UNAUTHORIZED
    assert await close_code(forged) == CloseCode.UNAUTHORIZED
    assert await close_code(other_user) == CloseCode.NOT_FOUND
    assert await close_code(missing) == CloseCode.NOT_FOUND
    assert seqs(await read_stored_until(by_query, 2)) == [1, 2]
    await by_query.close()


async def test_session_socket_streams_only_the_users_tasks_and_resumes_by_row_id(
    api: RunningApi,
    alice: ApiUser,
    bob: ApiUser,
    session_manager: DatabaseSessionManager,
    append_events: EventAppender,
) -> None:
    session_id = uuid.uuid4()
    mine_a = await make_task(session_manager, alice, session_id)
    mine_b = await make_task(session_manager, alice, session_id)
    theirs = await make_task(session_manager, bob, session_id)
    await append_events(mine_a, 2, session_id=session_id)
    await append_events(theirs, 2, session_id=session_id)
    path = f"/v1/sessions/{session_id}/events/ws"

    ws = await open_socket(api, path, alice.key)
    got = []
    while (message := await receive(ws))["kind"] != "caught_up":
        got.append(message)
    await append_events(mine_b, 2, session_id=session_id)
    await append_events(theirs, 1, session_id=session_id)
    await append_events(mine_a, 1, session_id=session_id)
    while len(got) < 5:
        message = await receive(ws)
        if message["kind"] == "event":
            got.append(message)
    await ws.close()
    await append_events(mine_b, 1, session_id=session_id)
    resumed = await open_socket(api, path, alice.key, after_seq=got[-1]["cursor"])
    after = []
    while (message := await receive(resumed))["kind"] != "caught_up":
        after.append(message)
    await resumed.close()

    tasks_seen = [(m["event"]["task_id"], m["event"]["sequence_number"]) for m in got + after]
    assert tasks_seen == [
        (str(mine_a), 1),
        (str(mine_a), 2),
        (str(mine_b), 1),
        (str(mine_b), 2),
        (str(mine_a), 3),
        (str(mine_b), 3),
    ]
    cursors = [m["cursor"] for m in got + after]
    assert cursors == sorted(cursors)
    assert len(set(cursors)) == len(cursors)


@pytest.mark.parametrize("after_seq", ["-1", "abc"])
async def test_bad_cursor_closes_the_socket(
    api: RunningApi, alice: ApiUser, session_manager: DatabaseSessionManager, after_seq: str
) -> None:
    # Arrange
    task_id = await make_task(session_manager, alice)

    # Act
    ws = await open_socket(api, f"/v1/tasks/{task_id}/events/ws", alice.key, after_seq=after_seq)
    async with asyncio.timeout(WAIT_SECONDS):
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()

    # Assert: a clear close code and a reason naming the field, not a bare 403 handshake.
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CloseCode.INVALID_REQUEST
    assert closed.value.rcvd.reason.startswith("after_seq: ")
