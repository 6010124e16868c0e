"""Versioned prompts, read through an optional Redis cache."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from uuid import UUID, uuid4

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from agent.db.models import Prompt
from agent.prompts.cache import PromptCache, PromptRecord
from agent.repositories.base import DEFAULT_PAGE_SIZE, BaseRepository, Page, paginate

logger = structlog.get_logger(__name__)

PROMPT_LOCK_NAMESPACE = 7202
"""First key of the two-key advisory lock that serialises version creation per name."""


def content_sha256(content: str) -> str:
    """Return the hex SHA-256 of a prompt's content (UTF-8)."""
    return hashlib.sha256(content.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PromptVersionResult:
    """Result of `PromptRepository.create_version`.

    Attributes:
        prompt: The new version, or the unchanged latest one when the content matched.
        created: Whether a new version was written (pending until the caller commits).
    """

    prompt: PromptRecord
    created: bool


class PromptRepository(BaseRepository[Prompt]):
    """Prompt versions: immutable rows, `version = max + 1` per name.

    With a cache, reads go through Redis (`prompt:{name}:v{version}`,
    `prompt:{name}:latest`); with `cache=None` every read goes to PostgreSQL.

    Writes and the cache: `create_version` never touches the cache, because the new
    version is not committed yet; a cached pointer to it would send other processes to
    a row that a rollback may remove (and whose number another content may then take).
    After committing, the caller calls `publish(result)`, which caches the version and
    moves the `latest` pointer forward. Until then (or if the process dies in between)
    readers see the previous latest for at most the cache TTL. Use one repository
    instance per transaction when writing: it remembers which names it changed and
    bypasses the cache for them until `publish`.
    """

    def __init__(self, session: AsyncSession, cache: PromptCache | None = None) -> None:
        """Bind the repository to the caller's session and an optional cache.

        Args:
            session: The session (and transaction) to work in.
            cache: Redis cache of prompt versions, or None to read PostgreSQL only.
        """
        super().__init__(Prompt, session)
        self.cache = cache
        self._uncommitted: set[str] = set()

    def _cacheable(self, name: str) -> bool:
        return self.cache is not None and name not in self._uncommitted

    async def _latest_row(self, name: str) -> Prompt | None:
        result = await self.session.execute(
            select(Prompt).where(Prompt.name == name).order_by(Prompt.version.desc()).limit(1)
        )
        return result.scalar_one_or_none()

    async def get_by_name(self, name: str) -> PromptRecord | None:
        """Get the latest version of a prompt.

        Args:
            name: The prompt's name.

        Returns:
            The latest version, or None when the prompt does not exist.
        """
        if self.cache is not None and self._cacheable(name):
            version = await self.cache.get_latest_version(name)
            if version is not None:
                cached = await self.cache.get_version(name, version)
                if cached is not None:
                    return cached
        row = await self._latest_row(name)
        if row is None:
            return None
        record = PromptRecord.model_validate(row)
        if self.cache is not None and self._cacheable(name):
            await self.cache.remember(record, is_latest=True)
        return record

    async def get_version(self, name: str, version: int) -> PromptRecord | None:
        """Get one version of a prompt.

        Args:
            name: The prompt's name.
            version: The version number.

        Returns:
            The version, or None.
        """
        if self.cache is not None and self._cacheable(name):
            cached = await self.cache.get_version(name, version)
            if cached is not None:
                return cached
        result = await self.session.execute(
            select(Prompt).where(Prompt.name == name, Prompt.version == version)
        )
        row = result.scalar_one_or_none()
        if row is None:
            return None
        record = PromptRecord.model_validate(row)
        if self.cache is not None and self._cacheable(name):
            await self.cache.set_version(record)
        return record

    async def list_latest(
        self, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[PromptRecord]:
        """List the latest version of every prompt, by name, one keyset page at a time.

        Args:
            limit: Page size.
            cursor: `next_cursor` of the previous page.

        Returns:
            The page.

        Raises:
            InvalidCursorError: When the cursor is malformed or from another listing.
            InvalidPageSizeError: When `limit` is out of range.
        """
        newer = aliased(Prompt)
        latest_only = (
            ~select(newer.id)
            .where(newer.name == Prompt.name, newer.version > Prompt.version)
            .exists()
        )
        page = await paginate(
            self.session,
            select(Prompt).where(latest_only),
            [Prompt.name],
            scope="prompts:latest:name",
            limit=limit,
            after=cursor,
            descending=False,
        )
        return Page(
            items=[PromptRecord.model_validate(row) for row in page.items],
            next_cursor=page.next_cursor,
        )

    async def create_version(
        self,
        name: str,
        content: str,
        category: str | None = None,
        created_by: UUID | None = None,
    ) -> PromptVersionResult:
        """Store new content as the next version; identical content returns the latest.

        Serialised per name by a transaction-scoped advisory lock, so concurrent
        creators get distinct, consecutive versions. Call `publish(result)` after the
        transaction commits.

        Args:
            name: The prompt's name.
            content: The prompt text.
            category: Optional category.
            created_by: The author's user id.

        Returns:
            The version and whether it was created.
        """
        await self.session.execute(
            select(func.pg_advisory_xact_lock(PROMPT_LOCK_NAMESPACE, func.hashtext(name)))
        )
        digest = content_sha256(content)
        latest = await self._latest_row(name)
        if latest is not None and latest.sha256 == digest and latest.content == content:
            return PromptVersionResult(prompt=PromptRecord.model_validate(latest), created=False)
        row = await self.create(
            id=uuid4(),
            name=name,
            version=(latest.version + 1) if latest is not None else 1,
            content=content,
            sha256=digest,
            category=category,
            created_by=created_by,
        )
        await self.session.refresh(row)
        self._uncommitted.add(name)
        logger.info("prompt_version_created", name=name, version=row.version)
        return PromptVersionResult(prompt=PromptRecord.model_validate(row), created=True)

    async def publish(self, result: PromptVersionResult) -> None:
        """Update the cache after the transaction that created a version committed.

        Never call before commit (see the class docstring). A no-op without a cache
        or when nothing was created.

        Args:
            result: What `create_version` returned.
        """
        self._uncommitted.discard(result.prompt.name)
        if self.cache is not None and result.created:
            await self.cache.remember(result.prompt, is_latest=True)
