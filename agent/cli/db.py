"""`agent db`: database migrations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from agent.config import get_settings, to_asyncpg_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "db" / "migrations"

db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)


def alembic_config(database_url: str) -> Config:
    """Build an Alembic configuration for the project's migrations.

    Args:
        database_url: PostgreSQL URL to migrate.

    Returns:
        A configuration that needs no alembic.ini.
    """
    # Alembic is imported on use: it is slow to import and most commands never need it.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation treats % specially; URLs may contain %-escapes.
    config.set_main_option("sqlalchemy.url", to_asyncpg_url(database_url).replace("%", "%%"))
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (blocking; call from a thread in async code).

    Args:
        database_url: PostgreSQL URL to migrate.
        revision: Target revision.
    """
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade_database(database_url: str, revision: str = "base") -> None:
    """Revert migrations down to `revision`.

    Args:
        database_url: PostgreSQL URL to migrate.
        revision: Target revision.
    """
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


@db_app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations to AGENT_DATABASE_URL."""
    settings = get_settings()
    if settings.database_url is None:
        typer.echo("error: AGENT_DATABASE_URL is not set", err=True)
        raise typer.Exit(2)
    upgrade_database(settings.database_url.get_secret_value(), revision)


@db_app.command("downgrade")
def downgrade(revision: str = typer.Argument(..., help="Target revision.")) -> None:
    """Revert migrations on AGENT_DATABASE_URL."""
    settings = get_settings()
    if settings.database_url is None:
        typer.echo("error: AGENT_DATABASE_URL is not set", err=True)
        raise typer.Exit(2)
    downgrade_database(settings.database_url.get_secret_value(), revision)


def register(app: typer.Typer) -> None:
    """Add `agent db` to the CLI."""
    app.add_typer(db_app, name="db")
