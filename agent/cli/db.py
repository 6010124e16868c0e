"""`agent db`: database migrations (the commands over `agent.db.migrate`) and event retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from agent.cli.durations import DurationError, parse_duration
from agent.config import get_settings
from agent.db.migrate import downgrade_database, upgrade_database

if TYPE_CHECKING:
    from agent.repositories.retention import PruneResult

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


@db_app.command("prune")
def prune(
    finished_before: str = typer.Option(
        ...,
        "--finished-before",
        help="Prune tasks that finished longer ago than this (30m, 12h, 30d, 2w).",
    ),
) -> None:
    """Delete the events and outputs of tasks finished before then (rows and totals stay)."""
    try:
        age = parse_duration(finished_before)
    except DurationError as exc:
        typer.echo(f"error: --finished-before: {exc}", err=True)
        raise typer.Exit(2) from exc
    now = datetime.now(UTC)
    result = asyncio.run(prune_events(_database_url(), now - age, now))
    typer.echo(
        f"pruned {result.tasks} tasks finished before {(now - age).isoformat()}: "
        f"{result.events} events, {result.outputs} milestone outputs"
    )


async def prune_events(database_url: str, cutoff: datetime, now: datetime) -> PruneResult:
    """Prune the tasks finished before `cutoff`, a bounded batch of tasks per transaction.

    The same code the scheduled retention workflow runs (`prune_in_batches`).

    Args:
        database_url: The database to prune.
        cutoff: Tasks that finished before this instant lose their events and outputs.
        now: Recorded as the tasks' `events_pruned_at`.

    Returns:
        How many tasks, events and outputs were pruned.
    """
    # The data layer is imported on use so `agent --help` and other commands start fast.
    from agent.db.session import DatabaseSessionManager
    from agent.repositories.retention import prune_in_batches

    async with DatabaseSessionManager(database_url, pool_size=1) as manager:
        return await prune_in_batches(manager, cutoff, now)


def register(app: typer.Typer) -> None:
    """Add `agent db` to the CLI."""
    app.add_typer(db_app, name="db")
