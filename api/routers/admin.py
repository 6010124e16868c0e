"""Admin routes: keys, spend limits and running-task quotas of every user; admin keys only.

Other keys get 403.
The same operations as `agent keys` (which needs database access instead of an admin key).
A key revoked here is refused by this process at once, by other API processes within
`api.auth.AUTH_CACHE_TTL_SECONDS`, and its open sockets are closed with 4401 within
`api.auth.KEY_RECHECK_SECONDS`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any, cast
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request

from agent.db.models import ApiKey
from agent.repositories.api_keys import ApiKeyRepository
from agent.repositories.quotas import QuotaRepository
from agent.repositories.spend import SpendRepository, UserSpendLimits
from agent.repositories.users import UserRepository
from api.admin_schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    ApiKeyRotate,
    UserSpendLimitsIn,
    UserSpendLimitsOut,
)
from api.auth import ApiKeyResolver
from api.dependencies import AdminKey, AppSettings, DBSession, TemporalClient
from api.errors import ErrorResponse, not_found
from api.schemas import MAX_NAME_CHARS
from api.services.admission import notify_quota_change

router = APIRouter(prefix="/v1/admin", tags=["admin"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    HTTPStatus.UNAUTHORIZED: {"model": ErrorResponse},
    HTTPStatus.FORBIDDEN: {"model": ErrorResponse},
    HTTPStatus.NOT_FOUND: {"model": ErrorResponse},
    HTTPStatus.UNPROCESSABLE_ENTITY: {"model": ErrorResponse},
}


def _out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut.model_validate(key, from_attributes=True)


def _resolver(request: Request) -> ApiKeyResolver:
    return cast(ApiKeyResolver, request.app.state.auth)


@router.get("/keys", operation_id="list_api_keys", summary="List API keys", responses=_ERRORS)
async def list_keys(
    db: DBSession,
    settings: AppSettings,
    _admin: AdminKey,
    user: Annotated[str | None, Query(min_length=1, max_length=MAX_NAME_CHARS)] = None,
    include_revoked: bool = False,
) -> ApiKeyList:
    """Keys (of one user, or every user), oldest first; only their prefixes."""
    user_id = None
    if user is not None:
        owner = await UserRepository(db).get_by_name(user)
        if owner is None:
            return ApiKeyList(items=[])
        user_id = owner.id
    keys = await ApiKeyRepository(db, settings.api_key_pepper).list_keys(
        user_id, include_revoked=include_revoked
    )
    return ApiKeyList(items=[_out(key) for key in keys])


@router.post(
    "/keys",
    status_code=HTTPStatus.CREATED,
    operation_id="create_api_key",
    summary="Create an API key",
    responses=_ERRORS,
)
async def create_key(
    body: ApiKeyCreate, db: DBSession, settings: AppSettings, _admin: AdminKey
) -> ApiKeyCreated:
    """Create a key for a user (created if needed); the response shows it this once."""
    owner = await UserRepository(db).get_or_create(body.user)
    plaintext, record = await ApiKeyRepository(db, settings.api_key_pepper).create_key(
        owner.id, body.name, is_admin=body.is_admin, expires_at=body.expires_at
    )
    await db.commit()
    await db.refresh(record)
    return ApiKeyCreated(**_out(record).model_dump(), key=plaintext)


@router.post(
    "/keys/{key_id}/revoke",
    operation_id="revoke_api_key",
    summary="Revoke an API key",
    responses=_ERRORS,
)
async def revoke_key(
    key_id: UUID, request: Request, db: DBSession, settings: AppSettings, _admin: AdminKey
) -> ApiKeyOut:
    """Revoke a key (idempotent): refused at once here, its sockets closed with 4401."""
    keys = ApiKeyRepository(db, settings.api_key_pepper)
    if await keys.get_by_id(key_id) is None:
        raise not_found("API key")
    await keys.revoke(key_id)
    await db.commit()
    _resolver(request).forget(key_id)
    record = await keys.get_by_id(key_id)
    assert record is not None
    await db.refresh(record)
    return _out(record)


@router.post(
    "/keys/{key_id}/rotate",
    status_code=HTTPStatus.CREATED,
    operation_id="rotate_api_key",
    summary="Rotate an API key",
    responses=_ERRORS,
)
async def rotate_key(
    key_id: UUID,
    request: Request,
    db: DBSession,
    settings: AppSettings,
    _admin: AdminKey,
    body: ApiKeyRotate | None = None,
) -> ApiKeyCreated:
    """Replace an active key by a new one (same user, label, role) and revoke it."""
    keys = ApiKeyRepository(db, settings.api_key_pepper)
    old = await keys.get_by_id(key_id)
    if old is None or old.revoked_at is not None:
        raise not_found("API key")
    plaintext, record = await keys.rotate(old, expires_at=body.expires_at if body else None)
    await db.commit()
    _resolver(request).forget(key_id)
    await db.refresh(record)
    return ApiKeyCreated(**_out(record).model_dump(), key=plaintext)


@router.put(
    "/users/{name}/limits",
    operation_id="set_user_limits",
    summary="Set a user's daily spend limits",
    responses=_ERRORS,
)
async def set_user_limits(
    name: Annotated[str, Path(min_length=1, max_length=MAX_NAME_CHARS)],
    body: UserSpendLimitsIn,
    db: DBSession,
    settings: AppSettings,
    client: TemporalClient,
    _admin: AdminKey,
) -> UserSpendLimitsOut:
    """Set the user's own daily limits and running-task quota (null: the server default).

    A new quota applies at once to the tasks the user has queued.
    """
    user = await UserRepository(db).get_by_name(name)
    if user is None:
        raise not_found("user")
    await SpendRepository(db).set_limits(
        user.id, UserSpendLimits(body.daily_token_limit, body.daily_cost_limit_usd)
    )
    await QuotaRepository(db).set_max_running(user.id, body.max_running_tasks)
    await db.commit()
    quota = body.max_running_tasks or settings.user_max_running_tasks
    await notify_quota_change(client, user.id, quota)
    return UserSpendLimitsOut(user=name, **body.model_dump())
