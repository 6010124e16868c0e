"""Prompts: immutable, versioned texts, read through the Redis cache when configured."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Query, Response

from agent.prompts.cache import PromptRecord
from agent.repositories.prompts import PromptRepository
from api.dependencies import AdminKey, CurrentUserId, DBSession, Prompts
from api.errors import ErrorResponse, not_found
from api.schemas import (
    DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
    MAX_NAME_CHARS,
    NAME_PATTERN,
    PromptCreate,
    PromptOut,
    PromptPage,
)

logger = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1/prompts", tags=["prompts"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    HTTPStatus.UNAUTHORIZED: {"model": ErrorResponse},
    HTTPStatus.NOT_FOUND: {"model": ErrorResponse},
    HTTPStatus.UNPROCESSABLE_ENTITY: {"model": ErrorResponse},
}
_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    HTTPStatus.FORBIDDEN: {"model": ErrorResponse},
}

PromptName = Annotated[str, Path(min_length=1, max_length=MAX_NAME_CHARS, pattern=NAME_PATTERN)]


def _out(record: PromptRecord) -> PromptOut:
    return PromptOut.model_validate(record, from_attributes=True)


@router.post(
    "",
    status_code=HTTPStatus.CREATED,
    operation_id="create_prompt",
    summary="Create a prompt version",
    responses={HTTPStatus.OK: {"model": PromptOut}, **_ADMIN_ERRORS},
)
async def create_prompt(
    body: PromptCreate,
    response: Response,
    db: DBSession,
    admin: AdminKey,
    cache: Prompts,
) -> PromptOut:
    """Store the content as the prompt's next version (201); admin keys only (else 403).

    Every user's next task pins the latest version of each system prompt, so changing one
    changes every tenant's tasks: only an admin key may. Content identical to the latest
    version creates nothing and returns that version with 200, so a retried POST never
    makes a duplicate version.
    """
    repo = PromptRepository(db, cache)
    result = await repo.create_version(
        body.name, body.content, category=body.category, created_by=admin.user_id
    )
    await db.commit()
    await repo.publish(result)
    if not result.created:
        response.status_code = HTTPStatus.OK
    return _out(result.prompt)


@router.get("", operation_id="list_prompts", summary="List prompts", responses=_ERRORS)
async def list_prompts(
    db: DBSession,
    _user_id: CurrentUserId,
    cache: Prompts,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = DEFAULT_LIST_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> PromptPage:
    """The latest version of every prompt, by name."""
    page = await PromptRepository(db, cache).list_latest(limit=limit, cursor=cursor)
    return PromptPage(items=[_out(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/{name}", operation_id="get_prompt", summary="Get a prompt", responses=_ERRORS)
async def get_prompt(
    name: PromptName,
    db: DBSession,
    _user_id: CurrentUserId,
    cache: Prompts,
    version: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> PromptOut:
    """One version of a prompt (the latest by default), served from Redis when cached."""
    repo = PromptRepository(db, cache)
    record = await (repo.get_by_name(name) if version is None else repo.get_version(name, version))
    if record is None:
        raise not_found("prompt")
    return _out(record)
