"""BaseRepository (create, get, typed errors) and keyset pagination with opaque cursors."""

from __future__ import annotations

import base64
import json
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from agent.db.models import User
from agent.repositories.base import BaseRepository, Page, encode_cursor, paginate
from agent.repositories.errors import InvalidCursorError, InvalidFieldError, InvalidPageSizeError

BY_ID: list[InstrumentedAttribute[Any]] = [User.id]
BY_CREATED_AT_ID: list[InstrumentedAttribute[Any]] = [User.created_at, User.id]


async def _list(
    session: AsyncSession,
    *,
    limit: int,
    after: str | None = None,
    keys: list[InstrumentedAttribute[Any]] = BY_ID,
    descending: bool = False,
) -> Page[User]:
    """One page of users, the way the product's listings call `paginate`."""
    scope = f"users:{','.join(k.key for k in keys)}:{'desc' if descending else 'asc'}"
    return await paginate(
        session,
        select(User),
        keys,
        scope=scope,
        limit=limit,
        after=after,
        descending=descending,
    )


async def _users(session: AsyncSession, count: int) -> list[User]:
    repo = BaseRepository(User, session)
    users = [await repo.create(name=f"user-{i:02d}") for i in range(count)]
    await session.commit()
    return users


async def test_create_then_get_by_id(session: AsyncSession) -> None:
    # Arrange
    repo = BaseRepository(User, session)
    created = await repo.create(name="ada")
    await session.commit()

    # Act
    found = await repo.get_by_id(created.id)

    # Assert
    assert found is not None
    assert found.id == created.id
    assert found.name == "ada"
    assert found.created_at is not None


async def test_get_by_id_of_missing_record_is_none(session: AsyncSession) -> None:
    assert await BaseRepository(User, session).get_by_id(uuid4()) is None


async def test_create_with_unknown_field_is_rejected(session: AsyncSession) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        await BaseRepository(User, session).create(name="x", nickname="y")
    assert caught.value.fields == ["nickname"]


@pytest.mark.parametrize(
    ("keys", "descending"),
    [(BY_ID, False), (BY_ID, True), (BY_CREATED_AT_ID, False), (BY_CREATED_AT_ID, True)],
)
async def test_keyset_pagination_visits_every_row_once(
    session: AsyncSession, keys: list[InstrumentedAttribute[Any]], descending: bool
) -> None:
    # Arrange: 25 rows created in one transaction share created_at; the id breaks ties.
    users = await _users(session, 25)

    # Act
    seen: list[User] = []
    page_sizes: list[int] = []
    cursor: str | None = None
    while True:
        page = await _list(session, limit=10, after=cursor, keys=keys, descending=descending)
        seen.extend(page.items)
        page_sizes.append(len(page.items))
        cursor = page.next_cursor
        if cursor is None:
            break

    # Assert
    assert page_sizes == [10, 10, 5]
    assert sorted(u.id for u in seen) == sorted(u.id for u in users)
    assert len({u.id for u in seen}) == 25
    order = [(u.created_at, u.id) if keys is BY_CREATED_AT_ID else u.id for u in seen]
    assert order == sorted(order, reverse=descending)


async def test_last_full_page_has_no_next_cursor(session: AsyncSession) -> None:
    await _users(session, 10)
    page = await _list(session, limit=10)
    assert len(page.items) == 10
    assert page.next_cursor is None


def _tamper(cursor: str) -> str:
    wrapped = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    body = json.loads(wrapped["b"])
    body["k"] = ["00000000-0000-0000-0000-000000000000"]
    wrapped["b"] = json.dumps(body, separators=(",", ":"))
    return base64.urlsafe_b64encode(json.dumps(wrapped).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-cursor",
        "!!!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"b": 1, "d": 2}').decode(),
        "x" * 5000,
        "",
    ],
)
async def test_malformed_cursor_is_rejected(session: AsyncSession, bad: str) -> None:
    await _users(session, 3)
    with pytest.raises(InvalidCursorError):
        await _list(session, limit=1, after=bad)


async def test_tampered_cursor_is_rejected(session: AsyncSession) -> None:
    # Arrange
    await _users(session, 3)
    cursor = (await _list(session, limit=1)).next_cursor
    assert cursor is not None

    # Act / Assert
    with pytest.raises(InvalidCursorError, match="integrity"):
        await _list(session, limit=1, after=_tamper(cursor))


async def test_cursor_of_another_listing_is_rejected(session: AsyncSession) -> None:
    # Arrange
    await _users(session, 3)
    cursor = (await _list(session, limit=1, keys=BY_ID)).next_cursor
    assert cursor is not None

    # Act / Assert
    with pytest.raises(InvalidCursorError, match="another listing"):
        await _list(session, limit=1, after=cursor, keys=BY_CREATED_AT_ID)
    with pytest.raises(InvalidCursorError, match="another listing"):
        await _list(session, limit=1, after=cursor, descending=True)


async def test_cursor_with_valid_digest_but_bad_key_is_rejected(session: AsyncSession) -> None:
    forged = encode_cursor("users:id:asc", ["not-a-uuid"])
    with pytest.raises(InvalidCursorError, match="bad key value"):
        await _list(session, limit=1, after=forged)


@pytest.mark.parametrize("limit", [0, -1, 501])
async def test_page_size_out_of_range_is_rejected(session: AsyncSession, limit: int) -> None:
    with pytest.raises(InvalidPageSizeError):
        await _list(session, limit=limit)
