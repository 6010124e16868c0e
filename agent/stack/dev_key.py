"""The dev API key `agent up` prints: created once, kept in `DIR/dev_api_key`."""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from agent.config import Settings, to_asyncpg_url
from agent.db.session import DatabaseSessionManager
from agent.repositories.api_keys import ApiKeyRepository
from agent.repositories.users import UserRepository

logger = structlog.get_logger(__name__)

DEV_USER_NAME = "dev"
DEV_KEY_NAME = "agent up"
DEV_KEY_FILE_NAME = "dev_api_key"
DEV_KEY_FILE_MODE = 0o600


def _write_secret(path: Path, value: str) -> None:
    # Created with owner-only permissions from the start, never briefly world-readable.
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, DEV_KEY_FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    path.with_suffix(".tmp").replace(path)


async def ensure_dev_api_key(database_url: str, data_dir: Path, settings: Settings) -> str:
    """Return the dev user's API key, creating user `dev` and a key on first start.

    The plaintext lives in `DIR/dev_api_key` (mode 0600) so that restarts print the same
    key; a key that no longer resolves (another database, revoked, other pepper) is
    replaced. It is an admin key: it is the operator's own key on their machine, so it may
    change the system prompts (a dev key made before keys had roles is promoted).

    Args:
        database_url: The migrated database.
        data_dir: The stack's data directory.
        settings: For the API key pepper.

    Returns:
        The plaintext key.
    """
    path = data_dir / DEV_KEY_FILE_NAME
    stored = path.read_text().strip() if path.exists() else None
    manager = DatabaseSessionManager(to_asyncpg_url(database_url), pool_size=1)
    async with manager, manager.session() as session:
        keys = ApiKeyRepository(session, settings.api_key_pepper)
        existing = await keys.lookup(stored) if stored is not None else None
        if stored is not None and existing is not None:
            if not existing.is_admin:
                await keys.set_admin(existing.key_id, True)
                await session.commit()
            return stored
        user = await UserRepository(session).get_or_create(DEV_USER_NAME)
        plaintext, record = await keys.create_key(user.id, DEV_KEY_NAME, is_admin=True)
        await session.commit()
    _write_secret(path, plaintext)
    logger.info("dev_api_key_created", prefix=record.prefix, path=str(path))
    return plaintext
