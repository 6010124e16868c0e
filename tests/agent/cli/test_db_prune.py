"""`agent db prune`: bad input exits 2 naming the option; a prune prints what it removed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from agent.cli.main import app
from agent.db.session import DatabaseSessionManager


def test_a_bad_age_exits_2_naming_the_option(tmp_path: Path) -> None:
    # Act
    result = CliRunner().invoke(
        app,
        ["db", "prune", "--finished-before", "thirty days"],
        env={"AGENT_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )

    # Assert
    assert result.exit_code == 2
    assert "--finished-before" in result.output
    assert "not a duration" in result.output


async def test_prune_reports_what_it_removed(
    database_url: str, session_manager: DatabaseSessionManager
) -> None:
    # Act: nothing in the test database finished 520 weeks ago.
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["db", "prune", "--finished-before", "520w"],
        env={"AGENT_DATABASE_URL": database_url},
    )

    # Assert
    assert result.exit_code == 0, result.output
    assert result.output.startswith("pruned 0 tasks finished before ")
    assert "0 events, 0 milestone outputs" in result.output
