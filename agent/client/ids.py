"""Short task ids, as git shortens commits: the first characters, long enough to be unique.

A person may type any unique prefix of a task id (with or without dashes); the client
resolves it against the caller's own task list, so the API needs no prefix search.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from itertools import pairwise
from uuid import UUID

from agent.client.client import AgentApiClient, ApiRequestError

SHORT_ID_CHARS = 8
MIN_PREFIX_CHARS = 4
LIST_PAGE_SIZE = 200


def short_id(task_id: UUID, length: int = SHORT_ID_CHARS) -> str:
    """The first `length` hex digits of a task id."""
    return task_id.hex[:length]


def unique_prefix_length(task_ids: Iterable[UUID], minimum: int = SHORT_ID_CHARS) -> int:
    """The shortest prefix length (at least `minimum`) that tells these ids apart."""
    hexes = sorted({t.hex for t in task_ids})
    length = minimum
    for before, after in pairwise(hexes):
        common = 0
        while common < len(before) and before[common] == after[common]:
            common += 1
        length = max(length, common + 1)
    return length


def _normalise(text: str) -> str:
    return text.strip().lower().replace("-", "")


async def resolve_task_id(api: AgentApiClient, text: str) -> UUID:
    """The task a full id or a unique id prefix names.

    Args:
        api: A client of the caller's API.
        text: A full UUID, or at least `MIN_PREFIX_CHARS` leading hex digits of one.

    Returns:
        The task id.

    Raises:
        ApiRequestError: 422 when `text` is no id prefix, 404 when no task of the caller
            starts with it, 422 (`ambiguous_id`) when several do (the message lists them).
    """
    try:
        return UUID(text.strip())
    except ValueError:
        pass
    prefix = _normalise(text)
    if len(prefix) < MIN_PREFIX_CHARS or any(c not in "0123456789abcdef" for c in prefix):
        raise ApiRequestError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "validation_error",
            f"{text!r} is not a task id or an id prefix of at least {MIN_PREFIX_CHARS} hex digits",
        )
    matches: list[UUID] = []
    cursor: str | None = None
    while True:
        page = await api.list_tasks(limit=LIST_PAGE_SIZE, cursor=cursor)
        matches.extend(item.id for item in page.items if item.id.hex.startswith(prefix))
        cursor = page.next_cursor
        if cursor is None or not page.items:
            break
    if not matches:
        raise ApiRequestError(HTTPStatus.NOT_FOUND, "not_found", f"no task id starts with {text}")
    if len(matches) > 1:
        names = ", ".join(str(m) for m in matches[:5])
        raise ApiRequestError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "ambiguous_id",
            f"{len(matches)} tasks start with {text}: {names}; type more of the id",
        )
    return matches[0]
