"""The API baseline: the leanest FastAPI + asyncpg app doing the project's per-request work.

`python -m bench.lean_api SPEC OUT` serves, on uvicorn with the project API's settings
(httptools, uvloop, no access log, one process), until `SPEC["stop_file"]` appears:

- `GET /healthz`: a bare FastAPI route returning `{"status": "ok"}`.
- `GET /v1/tasks/{id}`: what the project's route must do and nothing else. The bearer key
  is HMAC-hashed with the server's pepper and looked up with the project's own key
  statement, cached per process for the project's TTL (`AUTH_CACHE_TTL_SECONDS`: the
  project caches too, so per request both sides hash and hit a dict); then the project's
  own task-detail statement (`_task_detail_statement`, compiled once to SQL with `$n`
  parameters) runs in autocommit on an asyncpg pool of the same size as the API's, and
  the row goes out as JSON (`json.dumps`, no model).
- `POST /v1/tasks`: the same key check, one `INSERT INTO tasks` with the columns the
  project writes, then `start_workflow` of `TaskWorkflow` with the same input type,
  id, queue and search attributes through a client with the project's data converter.

What the project does beyond this (links, totals, rate-limit bookkeeping, request ids,
the body-size guard, idempotency and quota checks) is exactly the overhead the ratio
measures. SPEC (JSON): `{"port", "database_url", "pepper", "pool_size", "temporal_address",
"namespace", "task_queue", "ready_file", "stop_file"}`; OUT: `{"requests": n}`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import asyncpg
from fastapi import FastAPI, Request, Response
from sqlalchemy import ClauseElement, bindparam, insert, or_, select
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.sql import func
from sqlalchemy.sql.compiler import SQLCompiler
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from agent.contract.task import TaskInput
from agent.db.models import ApiKey, Task
from agent.events.types import TaskStatus
from agent.temporal import TASK_STATUS, USER_ID
from agent.temporal.converter import data_converter
from api.auth import AUTH_CACHE_TTL_SECONDS
from api.services.task_detail import _task_detail_statement

STOP_POLL_SECONDS = 0.1
JSON = "application/json"


def compiled(statement: ClauseElement) -> tuple[str, list[str], dict[str, Any]]:
    """SQL text with `$n` parameters (asyncpg's), their names in order, built-in values."""
    dialect = pg_asyncpg.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
    out = cast(SQLCompiler, statement.compile(dialect=dialect))
    return str(out), list(out.positiontup or []), dict(out.params)


def key_lookup_sql() -> str:
    """The project's key lookup (`ApiKeyRepository.lookup`) as SQL."""
    sql, _, _ = compiled(
        select(ApiKey.id, ApiKey.user_id, ApiKey.is_admin, ApiKey.expires_at).where(
            ApiKey.key_hash == bindparam("key_hash"),
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
        )
    )
    return sql


INSERT_COLUMNS = (
    "id",
    "user_id",
    "session_id",
    "goal",
    "complexity",
    "status",
    "workflow_id",
    "breakpoints",
    "max_parallel",
    "max_attempts",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cost_unknown",
    "usage_estimated",
    "prompt_versions",
    "last_event_seq",
)


def insert_sql() -> tuple[str, list[str], dict[str, Any]]:
    """`INSERT INTO tasks (...) VALUES (...) RETURNING id, created_at`."""
    table = Task.__table__
    statement = (
        insert(Task)
        .values({name: bindparam(name) for name in INSERT_COLUMNS})
        .returning(table.c.id, table.c.created_at)
    )
    return compiled(statement)


class LeanApp:
    """State of the baseline app: a pool, a Temporal client, the key cache."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.pepper = spec["pepper"].encode()
        self.pool: asyncpg.Pool | None = None
        self.temporal: Client | None = None
        self.keys: dict[str, tuple[uuid.UUID, float]] = {}
        self.detail_sql, self.detail_order, self.detail_values = compiled(_task_detail_statement())
        self.key_sql = key_lookup_sql()
        self.insert_sql, self.insert_order, _ = insert_sql()
        self.requests = 0

    async def start(self) -> None:
        """Open the pool and the Temporal client."""
        # SQLAlchemy's URL form to asyncpg's.
        dsn = self.spec["database_url"].replace("postgresql+asyncpg://", "postgresql://")
        size = int(self.spec["pool_size"])
        self.pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
        self.temporal = await Client.connect(
            self.spec["temporal_address"],
            namespace=self.spec["namespace"],
            data_converter=data_converter,
        )

    async def user_of(self, request: Request) -> uuid.UUID | None:
        """The caller's user id, from the cache or the key statement."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hmac.new(self.pepper, token.strip().encode(), hashlib.sha256).hexdigest()
        now = time.monotonic()
        cached = self.keys.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        assert self.pool is not None
        row = await self.pool.fetchrow(self.key_sql, digest)
        if row is None:
            return None
        self.keys[digest] = (row["user_id"], now + AUTH_CACHE_TTL_SECONDS)
        return row["user_id"]  # type: ignore[no-any-return]


def build_app(lean: LeanApp) -> FastAPI:
    """The baseline's three routes."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/tasks/{task_id}")
    async def get_task(task_id: uuid.UUID, request: Request) -> Response:
        lean.requests += 1
        user_id = await lean.user_of(request)
        if user_id is None:
            return Response(status_code=401)
        assert lean.pool is not None
        values = {**lean.detail_values, "task_id": task_id, "user_id": user_id}
        row = await lean.pool.fetchrow(lean.detail_sql, *(values[n] for n in lean.detail_order))
        if row is None:
            return Response(status_code=404)
        return Response(json.dumps(dict(row), default=str), media_type=JSON)

    @app.post("/v1/tasks", status_code=201)
    async def create_task(request: Request) -> Response:
        lean.requests += 1
        user_id = await lean.user_of(request)
        if user_id is None:
            return Response(status_code=401)
        body = json.loads(await request.body())
        task_id = uuid.uuid4()
        workflow_id = f"task-{task_id}"
        values: dict[str, Any] = {
            "id": task_id,
            "user_id": user_id,
            "session_id": None,
            "goal": body["goal"],
            "complexity": None,
            "status": TaskStatus.PENDING.value,
            "workflow_id": workflow_id,
            "breakpoints": "[]",
            "max_parallel": 4,
            "max_attempts": 3,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": 0.0,
            "cost_unknown": False,
            "usage_estimated": False,
            "prompt_versions": "{}",
            "last_event_seq": 0,
        }
        assert lean.pool is not None
        assert lean.temporal is not None
        row = await lean.pool.fetchrow(lean.insert_sql, *(values[n] for n in lean.insert_order))
        assert row is not None
        await lean.temporal.start_workflow(
            "TaskWorkflow",
            TaskInput(task_id=task_id, user_id=user_id),
            id=workflow_id,
            task_queue=lean.spec["task_queue"],
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(USER_ID, str(user_id)),
                    SearchAttributePair(TASK_STATUS, TaskStatus.PENDING.value),
                ]
            ),
        )
        created = row["created_at"].astimezone(UTC) if row["created_at"] else datetime.now(UTC)
        answer = {"id": str(task_id), "workflow_id": workflow_id, "created_at": str(created)}
        return Response(json.dumps(answer), status_code=201, media_type=JSON)

    return app


async def serve(spec: dict[str, Any]) -> int:
    """Serve until the stop file appears; returns the requests handled."""
    import uvicorn

    lean = LeanApp(spec)
    await lean.start()
    config = uvicorn.Config(
        build_app(lean), host="127.0.0.1", port=int(spec["port"]), log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(STOP_POLL_SECONDS)
    await asyncio.to_thread(Path(spec["ready_file"]).touch)
    stop = Path(spec["stop_file"])
    while not await asyncio.to_thread(stop.exists):
        await asyncio.sleep(STOP_POLL_SECONDS)
    server.should_exit = True
    await serving
    assert lean.pool is not None
    await lean.pool.close()
    return lean.requests


def main() -> None:
    """Read SPEC, serve, write OUT."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    import uvloop

    requests = uvloop.run(serve(spec))
    Path(sys.argv[2]).write_text(json.dumps({"requests": requests}))


if __name__ == "__main__":
    main()
