"""`agent bench`: the benchmark suite against its own embedded stack (see `bench/`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

FAILURE_EXIT_CODE = 1


def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="Small sizes: under 3 minutes on 2 cores.")
    ] = False,
    only: Annotated[
        str,
        typer.Option(
            "--only",
            help="Comma-separated scenarios: overhead, concurrency, saturation, relay, "
            "tokens, resume, tracing, tools, history, api.",
        ),
    ] = "",
    profile: Annotated[
        bool, typer.Option("--profile", help="Sample the worker with py-spy in scenario 3.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", help="Results directory (default bench/results).")
    ] = None,
) -> None:
    """Start a private stack, run every scenario, print the table, write latest.json/png."""
    try:
        from bench.runner import RESULTS_DIR, MissingDependencyError, check_dependencies
    except ImportError as exc:
        typer.echo(
            f"error: the benchmark needs the repository checkout and its bench group ({exc}); "
            "run `uv sync --group bench` in the repository",
            err=True,
        )
        raise typer.Exit(FAILURE_EXIT_CODE) from None
    try:
        check_dependencies(profile=profile)
    except MissingDependencyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(FAILURE_EXIT_CODE) from None
    from bench.runner import main_sync

    keys = [key.strip() for key in only.split(",") if key.strip()] or None
    try:
        main_sync(quick, keys, profile, output or RESULTS_DIR)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(FAILURE_EXIT_CODE) from None


def register(app: typer.Typer) -> None:
    """Add `agent bench` to the CLI."""
    app.command("bench")(bench)
