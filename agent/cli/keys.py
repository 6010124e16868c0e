"""`agent keys`: API key management."""

from __future__ import annotations

import asyncio

import psutil
import typer

from agent.cli.errors import load_settings_or_exit
from agent.config import Settings
from agent.logging import configure_logging
from agent.stack.info import StackInfo

NO_DATABASE_EXIT_CODE = 2
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


async def create_api_key(
    database_url: str, settings: Settings, user_name: str, label: str | None
) -> tuple[str, str]:
    """Create a key for a user (created if needed) and commit.

    Args:
        database_url: The database to write to.
        settings: For the API key pepper.
        user_name: The key's owner.
        label: Optional name of the key.

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
            user.id, label
        )
        await session.commit()
        return plaintext, record.prefix


@keys_app.command("create")
def create(
    user: str = typer.Option(..., "--user", help="Owner's user name (created if needed)."),
    name: str | None = typer.Option(None, "--name", help="A label for the key."),
) -> None:
    """Create an API key and print it once (stdout: the key alone)."""
    if not user.strip() or len(user) > MAX_NAME_CHARS:
        typer.echo(f"error: --user must be 1 to {MAX_NAME_CHARS} characters", err=True)
        raise typer.Exit(NO_DATABASE_EXIT_CODE)
    if name is not None and len(name) > MAX_NAME_CHARS:
        typer.echo(f"error: --name must be at most {MAX_NAME_CHARS} characters", err=True)
        raise typer.Exit(NO_DATABASE_EXIT_CODE)
    settings = load_settings_or_exit()
    # Logs go to stderr, so stdout carries the key alone.
    configure_logging(
        settings.log_level if settings.log_level == "DEBUG" else QUIET_LOG_LEVEL,
        json=settings.log_json,
    )
    try:
        database_url = resolve_database_url(settings)
    except DatabaseNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(NO_DATABASE_EXIT_CODE) from None
    plaintext, prefix = asyncio.run(create_api_key(database_url, settings, user, name))
    typer.echo(plaintext)
    typer.echo(
        f"API key {prefix}… for user '{user}' created; it is shown only this once. "
        "Send it as 'Authorization: Bearer <key>'.",
        err=True,
    )


def register(app: typer.Typer) -> None:
    """Add `agent keys` to the CLI."""
    app.add_typer(keys_app, name="keys")
