"""The `agent` command line."""

from __future__ import annotations

import typer

from agent.cli import api, bench, chaos, db, keys, replay, sim, stack, tasks, worker

app = typer.Typer(
    name="agent",
    help="Durable, LLM-driven agent tasks on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Paragraphs of a docstring reflow to the terminal; `code` shows as code.
    rich_markup_mode="markdown",
)

for module in (stack, db, keys, sim, api, worker, tasks, replay, bench, chaos):
    module.register(app)


def main() -> None:
    """Entry point of the `agent` console script."""
    app()
