"""Generic repository and keyset pagination.

Transactions: repositories never commit or roll back. They `flush` so generated values
(ids, server defaults) are available, and the caller owns the transaction: an API request
commits once at the end, an activity commits its state change together with the events
describing it. This keeps "the row and the event announcing it" atomic.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import Select, inspect, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from agent.db.base import Base
from agent.repositories.errors import (
    InvalidCursorError,
    InvalidFieldError,
    InvalidPageSizeError,
)

ModelT = TypeVar("ModelT", bound=Base)
ItemT = TypeVar("ItemT")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
CURSOR_VERSION = 1
# Length of the integrity digest embedded in a cursor; enough to catch edits and
# corruption. Cursors are not secrets: every listing is already scoped to what the caller
# may see, so a forged position can only skip within the caller's own rows.
CURSOR_DIGEST_CHARS = 16
MAX_CURSOR_CHARS = 2048


@dataclass(frozen=True, slots=True)
class Page(Generic[ItemT]):
    """One page of a keyset-paginated listing.

    Attributes:
        items: The rows of this page, in listing order.
        next_cursor: Opaque cursor of the next page, or None on the last page.
    """

    items: list[ItemT] = field(default_factory=list)
    next_cursor: str | None = None


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:CURSOR_DIGEST_CHARS]


def encode_cursor(scope: str, values: builtins.list[Any]) -> str:
    """Encode a keyset position as an opaque, integrity-checked cursor.

    Args:
        scope: Identifies the listing (table, order, direction, filters) the cursor
            belongs to; decoding with another scope fails.
        values: JSON-serialisable sort-key values of the last row of a page.

    Returns:
        URL-safe base64 text.
    """
    body = json.dumps({"v": CURSOR_VERSION, "s": scope, "k": values}, separators=(",", ":"))
    wrapped = json.dumps({"b": body, "d": _digest(body)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(wrapped.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str, arity: int) -> builtins.list[Any]:
    """Decode a cursor made by `encode_cursor` for the same scope.

    Args:
        cursor: The opaque cursor text.
        scope: The listing's scope; must equal the one it was encoded with.
        arity: Number of sort-key values expected.

    Returns:
        The raw sort-key values.

    Raises:
        InvalidCursorError: On any malformed, edited or foreign cursor.
    """
    if not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursorError("empty or too long")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        wrapped = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        body = wrapped["b"]
        digest = wrapped["d"]
        if not isinstance(body, str) or not isinstance(digest, str):
            raise InvalidCursorError("malformed")
        if _digest(body) != digest:
            raise InvalidCursorError("integrity check failed")
        payload = json.loads(body)
        version, found_scope, values = payload["v"], payload["s"], payload["k"]
    except InvalidCursorError:
        raise
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursorError("malformed") from exc
    if version != CURSOR_VERSION:
        raise InvalidCursorError("unsupported version")
    if found_scope != scope:
        raise InvalidCursorError("belongs to another listing")
    if not isinstance(values, builtins.list) or len(values) != arity:
        raise InvalidCursorError("wrong number of keys")
    return values


def check_page_size(limit: int) -> None:
    """Validate a page size.

    Raises:
        InvalidPageSizeError: When `limit` is outside 1..MAX_PAGE_SIZE.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidPageSizeError(limit, MAX_PAGE_SIZE)


def _to_json_key(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def _from_json_key(value: Any, python_type: type[Any]) -> Any:
    try:
        if python_type is datetime:
            if not isinstance(value, str):
                raise TypeError("timestamp must be text")
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError("timestamp without zone")
            return parsed
        if python_type is UUID:
            if not isinstance(value, str):
                raise TypeError("uuid must be text")
            return UUID(value)
        if python_type is int:
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError("integer expected")
            return value
        if python_type is str:
            if not isinstance(value, str):
                raise TypeError("text expected")
            return value
    except (ValueError, TypeError) as exc:
        raise InvalidCursorError("bad key value") from exc
    raise InvalidCursorError("unsupported key type")


async def paginate(
    session: AsyncSession,
    stmt: Select[ItemT],
    keys: builtins.list[InstrumentedAttribute[Any]],
    *,
    scope: str,
    limit: int,
    after: str | None,
    descending: bool,
) -> Page[ItemT]:
    """Run `stmt` as one keyset page ordered by `keys`.

    The keys must be unique together (end with a primary key) so the order is total
    and every row is visited exactly once across pages, even while rows are inserted.

    Args:
        session: Session to run the query on.
        stmt: A select of one ORM entity (filters applied, no ORDER BY / LIMIT).
        keys: Sort columns, most significant first.
        scope: Cursor scope (see `encode_cursor`).
        limit: Page size.
        after: Cursor of the previous page, or None for the first page.
        descending: Whether to list in descending key order.

    Returns:
        The page and the cursor of the next one.

    Raises:
        InvalidCursorError: When `after` is not a cursor of this listing.
        InvalidPageSizeError: When `limit` is out of range.
    """
    check_page_size(limit)
    types = [key.type.python_type for key in keys]
    if after is not None:
        raw = decode_cursor(after, scope, len(keys))
        position = [_from_json_key(value, t) for value, t in zip(raw, types, strict=True)]
        row_key = tuple_(*keys) if len(keys) > 1 else keys[0]
        bound = tuple_(*position) if len(keys) > 1 else position[0]
        stmt = stmt.where(row_key < bound if descending else row_key > bound)
    order = [key.desc() if descending else key.asc() for key in keys]
    rows = builtins.list((await session.execute(stmt.order_by(*order).limit(limit + 1))).scalars())
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(scope, [_to_json_key(getattr(last, key.key)) for key in keys])
    return Page(items=items, next_cursor=next_cursor)


def check_usage_increments(input_tokens: int, output_tokens: int, cost_usd: float | None) -> None:
    """Reject negative usage increments (a usage column only ever grows).

    Raises:
        ValueError: When a value is negative.
    """
    if input_tokens < 0 or output_tokens < 0 or (cost_usd is not None and cost_usd < 0):
        raise ValueError("usage increments must not be negative")


class BaseRepository(Generic[ModelT]):
    """CRUD and keyset listing for one SQLAlchemy model.

    Repositories never commit; the caller owns the transaction (see module docstring).

    Example:
        >>> repo = BaseRepository(User, session)
        >>> user = await repo.create(name="ada")
        >>> await session.commit()
    """

    def __init__(self, model: type[ModelT], session: AsyncSession) -> None:
        """Bind the repository to a model and a session.

        Args:
            model: The ORM class this repository manages.
            session: The caller's session (and transaction).
        """
        self.model = model
        self.session = session

    @property
    def model_name(self) -> str:
        """The model's class name, used in error messages."""
        return self.model.__name__

    def _check_fields(self, fields: dict[str, Any]) -> None:
        columns = {attr.key for attr in inspect(self.model).column_attrs}
        unknown = [name for name in fields if name not in columns]
        if unknown:
            raise InvalidFieldError(self.model_name, unknown)

    async def get_by_id(self, record_id: Any) -> ModelT | None:
        """Get a record by primary key.

        Args:
            record_id: Primary key value.

        Returns:
            The instance, or None when there is none.
        """
        return await self.session.get(self.model, record_id)

    async def create(self, **fields: Any) -> ModelT:
        """Insert a record and flush it (ids and server defaults become available).

        Args:
            **fields: Column values.

        Returns:
            The new, flushed instance.

        Raises:
            InvalidFieldError: When a field is not a column of the model.
        """
        self._check_fields(fields)
        instance = self.model(**fields)
        self.session.add(instance)
        await self.session.flush()
        return instance
