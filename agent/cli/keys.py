"""`agent keys`: API key management (create, list, revoke, rotate).

The commands talk to the database directly (like `agent db`), so an operator can manage
keys with no API running and no admin key yet: the first admin key is made here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

import psutil
import typer

from agent.cli.errors import load_settings_or_exit
from agent.config import Settings
from agent.logging import configure_logging
from agent.stack.info import StackInfo

if TYPE_CHECKING:
    from agent.db.models import ApiKey

NO_DATABASE_EXIT_CODE = 2
KEY_NOT_FOUND_EXIT_CODE = 1
MAX_NAME_CHARS = 255
QUIET_LOG_LEVEL = "WARNING"
"""A one-shot command keeps stderr to its hint unless DEBUG logging is asked for."""

keys_app = typer.Typer(help="API keys.", no_args_is_help=True)


class DatabaseNotFoundError(RuntimeError):
    """Neither AGENT_DATABASE_URL nor a running `agent up` says where the database is."""


def resolve_database_url(settings: Settings) -> str:
    """Find the database: `AGENT_DATABASE_URL`, else the one of a running `agent up`.

    Args:
        settings: The process settings.

    Returns:
        A PostgreSQL URL.

    Raises:
        DatabaseNotFoundError: With a one-line explanation when there is none.
    """
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    try:
        info = StackInfo.read(settings.data_dir)
    except ValueError as exc:
        raise DatabaseNotFoundError(
            f"{settings.data_dir}/stack.json is unreadable; set AGENT_DATABASE_URL"
        ) from exc
    if info is None:
        raise DatabaseNotFoundError(
            "no database: set AGENT_DATABASE_URL or start the stack with `agent up`"
        )
    if not psutil.pid_exists(info.pid):
        raise DatabaseNotFoundError(
            f"`agent up` (pid {info.pid}) is not running; start it or set AGENT_DATABASE_URL"
        )
    return info.database_url


@dataclass(frozen=True)
class KeyListing:
    """One row of `agent keys list`: never the key itself, only its prefix."""

    id: UUID
    prefix: str
    user: str
    name: str | None
    is_admin: bool
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


def _listing(key: ApiKey, user_name: str) -> KeyListing:
    return KeyListing(
        id=key.id,
        prefix=key.prefix,
        user=user_name,
        name=key.name,
        is_admin=key.is_admin,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


async def create_api_key(
    database_url: str,
    settings: Settings,
    user_name: str,
    label: str | None,
    *,
    is_admin: bool = False,
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    """Create a key for a user (created if needed) and commit.

    Args:
        database_url: The database to write to.
        settings: For the API key pepper.
        user_name: The key's owner.
        label: Optional name of the key.
        is_admin: Whether the key may change the system prompts and manage keys/quotas.
        expires_at: Optional end of validity.

    Returns:
        The plaintext key and its display prefix.
    """
    # The data layer is imported on use so `agent --help` and other commands start fast.
    from agent.db.session import DatabaseSessionManager
    from agent.repositories.api_keys import ApiKeyRepository
    from agent.repositories.users import UserRepository

    async with (
        DatabaseSessionManager(database_url, pool_size=1) as manager,
        manager.session() as session,
    ):
        user = await UserRepository(session).get_or_create(user_name)
        plaintext, record = await ApiKeyRepository(session, settings.api_key_pepper).create_key(
            user.id, label, is_admin=is_admin, expires_at=expires_at
        )
        await session.commit()
        return plaintext, record.prefix


async def list_api_keys(
    database_url: str, settings: Settings, user_name: str | None, include_revoked: bool
) -> list[KeyListing]:
    """List keys (of one user, or all), oldest first.

    Args:
        database_url: The database to read.
        settings: For the API key pepper.
        user_name: Only this user's keys; every user's when None.
        include_revoked: Also list revoked keys.

    Returns:
        One listing per key; an unknown user has none.
    """
    from agent.db.session import DatabaseSessionManager
    from agent.repositories.api_keys import ApiKeyRepository
    from agent.repositories.users import UserRepository

    async with (
        DatabaseSessionManager(database_url, pool_size=1) as manager,
        manager.session() as session,
    ):
        users = UserRepository(session)
        user_id = None
        if user_name is not None:
            user = await users.get_by_name(user_name)
            if user is None:
                return []
            user_id = user.id
        keys = await ApiKeyRepository(session, settings.api_key_pepper).list_keys(
            user_id, include_revoked=include_revoked
        )
        names = await users.names_by_id({key.user_id for key in keys})
        return [_listing(key, names.get(key.user_id, "?")) for key in keys]


async def revoke_api_key(database_url: str, settings: Settings, key_ref: str) -> str | None:
    """Revoke a key by id or prefix and commit.

    Returns:
        The revoked key's prefix, or None when no single key matches `key_ref`.
    """
    from agent.db.session import DatabaseSessionManager
    from agent.repositories.api_keys import ApiKeyRepository

    async with (
        DatabaseSessionManager(database_url, pool_size=1) as manager,
        manager.session() as session,
    ):
        keys = ApiKeyRepository(session, settings.api_key_pepper)
        key = await keys.find(key_ref)
        if key is None:
            return None
        await keys.revoke(key.id)
        await session.commit()
        return key.prefix


async def rotate_api_key(
    database_url: str, settings: Settings, key_ref: str
) -> tuple[str, str, str] | None:
    """Replace a key (same owner, label and role) and revoke the old one, in one commit.

    Returns:
        The new plaintext key, its prefix and the old prefix, or None when no single
        active key matches `key_ref`.
    """
    from agent.db.session import DatabaseSessionManager
    from agent.repositories.api_keys import ApiKeyRepository

    async with (
        DatabaseSessionManager(database_url, pool_size=1) as manager,
        manager.session() as session,
    ):
        keys = ApiKeyRepository(session, settings.api_key_pepper)
        key = await keys.find(key_ref)
        if key is None or key.revoked_at is not None:
            return None
        plaintext, record = await keys.rotate(key)
        await session.commit()
        return plaintext, record.prefix, key.prefix


def _database_or_exit() -> tuple[str, Settings]:
    settings = load_settings_or_exit()
    # Logs go to stderr, so stdout carries the key (or the listing) alone.
    configure_logging(
        settings.log_level if settings.log_level == "DEBUG" else QUIET_LOG_LEVEL,
        json=settings.log_json,
    )
    try:
        return resolve_database_url(settings), settings
    except DatabaseNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(NO_DATABASE_EXIT_CODE) from None


@keys_app.command("create")
def create(
    user: str = typer.Option(..., "--user", help="Owner's user name (created if needed)."),
    name: str | None = typer.Option(None, "--name", help="A label for the key."),
    admin: bool = typer.Option(
        False, "--admin", help="May change system prompts, keys and quotas of every user."
    ),
    expires_in_days: float | None = typer.Option(
        None, "--expires-in-days", min=0.0, help="The key stops working after this many days."
    ),
) -> None:
    """Create an API key and print it once (stdout: the key alone)."""
    if not user.strip() or len(user) > MAX_NAME_CHARS:
        typer.echo(f"error: --user must be 1 to {MAX_NAME_CHARS} characters", err=True)
        raise typer.Exit(NO_DATABASE_EXIT_CODE)
    if name is not None and len(name) > MAX_NAME_CHARS:
        typer.echo(f"error: --name must be at most {MAX_NAME_CHARS} characters", err=True)
        raise typer.Exit(NO_DATABASE_EXIT_CODE)
    database_url, settings = _database_or_exit()
    expires_at = (
        datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days is not None else None
    )
    plaintext, prefix = asyncio.run(
        create_api_key(database_url, settings, user, name, is_admin=admin, expires_at=expires_at)
    )
    typer.echo(plaintext)
    role = "admin key" if admin else "API key"
    typer.echo(
        f"{role} {prefix}… for user '{user}' created; it is shown only this once. "
        "Send it as 'Authorization: Bearer <key>'.",
        err=True,
    )


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value is not None else "-"


@keys_app.command("list")
def list_keys(
    user: str | None = typer.Option(None, "--user", help="Only this user's keys."),
    include_revoked: bool = typer.Option(False, "--all", help="Include revoked keys."),
) -> None:
    """List keys by prefix (the keys themselves are never stored, so never shown)."""
    database_url, settings = _database_or_exit()
    rows = asyncio.run(list_api_keys(database_url, settings, user, include_revoked))
    typer.echo(
        f"{'PREFIX':<14}{'ID':<38}{'USER':<16}{'ROLE':<7}{'CREATED':<18}"
        f"{'EXPIRES':<18}{'LAST USED':<18}{'REVOKED':<18}NAME"
    )
    for row in rows:
        typer.echo(
            f"{row.prefix:<14}{row.id!s:<38}{row.user[:15]:<16}"
            f"{'admin' if row.is_admin else 'user':<7}{_when(row.created_at):<18}"
            f"{_when(row.expires_at):<18}{_when(row.last_used_at):<18}"
            f"{_when(row.revoked_at):<18}{row.name or ''}"
        )


@keys_app.command("revoke")
def revoke(key: str = typer.Argument(..., help="The key's id or prefix (from `list`).")) -> None:
    """Revoke a key: REST refuses it within seconds and its open sockets close with 4401."""
    database_url, settings = _database_or_exit()
    prefix = asyncio.run(revoke_api_key(database_url, settings, key))
    if prefix is None:
        typer.echo(f"error: no single key matches {key!r}", err=True)
        raise typer.Exit(KEY_NOT_FOUND_EXIT_CODE)
    typer.echo(f"key {prefix}… revoked", err=True)


@keys_app.command("rotate")
def rotate(key: str = typer.Argument(..., help="The key's id or prefix (from `list`).")) -> None:
    """Replace a key with a new one (same user, label, role); print the new key once."""
    database_url, settings = _database_or_exit()
    rotated = asyncio.run(rotate_api_key(database_url, settings, key))
    if rotated is None:
        typer.echo(f"error: no single active key matches {key!r}", err=True)
        raise typer.Exit(KEY_NOT_FOUND_EXIT_CODE)
    plaintext, new_prefix, old_prefix = rotated
    typer.echo(plaintext)
    typer.echo(
        f"key {old_prefix}… revoked; its replacement {new_prefix}… is shown only this once.",
        err=True,
    )


def register(app: typer.Typer) -> None:
    """Add `agent keys` to the CLI."""
    app.add_typer(keys_app, name="keys")
