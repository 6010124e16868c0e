"""`agent worker`: run the Temporal worker against configured services."""

from __future__ import annotations

import asyncio

import typer

from agent.cli.errors import load_settings_or_exit


def worker(
    task_queue: str | None = typer.Option(
        None, help="Task queue to poll [AGENT_TASK_QUEUE, agent-tasks]."
    ),
) -> None:
    """Run TaskWorkflow and its activities until Ctrl-C / SIGTERM (graceful shutdown)."""
    from agent.temporal import TemporalStartupError
    from agent.worker import run_worker

    settings = load_settings_or_exit()
    if task_queue is not None:
        settings = settings.model_copy(update={"task_queue": task_queue})
    if settings.database_url is None:
        typer.echo("AGENT_DATABASE_URL is not set", err=True)
        raise typer.Exit(code=2)
    try:
        asyncio.run(run_worker(settings))
    except TemporalStartupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("worker")(worker)
