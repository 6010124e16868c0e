"""`agent db`: database migrations (the commands over `agent.db.migrate`)."""

from __future__ import annotations

import typer

from agent.config import get_settings
from agent.db.migrate import downgrade_database, upgrade_database

db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)


def _database_url() -> str:
    settings = get_settings()
    if settings.database_url is None:
        typer.echo("error: AGENT_DATABASE_URL is not set", err=True)
        raise typer.Exit(2)
    return settings.database_url.get_secret_value()


@db_app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations to AGENT_DATABASE_URL."""
    upgrade_database(_database_url(), revision)


@db_app.command("downgrade")
def downgrade(revision: str = typer.Argument(..., help="Target revision.")) -> None:
    """Revert migrations on AGENT_DATABASE_URL."""
    downgrade_database(_database_url(), revision)


def register(app: typer.Typer) -> None:
    """Add `agent db` to the CLI."""
    app.add_typer(db_app, name="db")
