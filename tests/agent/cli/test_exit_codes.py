"""One exit-code table for every task command, pinned: the README's table is this one.

Each case runs the real `agent` command against the real stack, as a person would.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from agent.cli.exit_codes import EXIT_CODES_TABLE, ExitCode
from tests.agent.cli.test_tasks_cli import AGENT, GOAL, _env, _finish, agent, stack
from tests.agent.client.stack import RunningStack

__all__ = ["stack"]

README = Path(__file__).resolve().parents[3] / "README.md"
UNKNOWN = "ffffffff-ffff-4fff-8fff-ffffffffffff"


def test_the_readme_table_is_the_code_table() -> None:
    text = README.read_text()
    table = text[text.index("| code | meaning |") :].split("\n\n", 1)[0]
    rows = re.findall(r"^\| (\d) \| (.+) \|$", table, flags=re.MULTILINE)
    assert [(int(code), text) for code, text in rows] == [
        (int(code), meaning) for code, meaning in EXIT_CODES_TABLE
    ]
    assert [int(code) for code, _ in EXIT_CODES_TABLE] == list(range(7))


async def test_an_invalid_goal_names_the_field_and_exits_2(
    stack: RunningStack, tmp_path: Path
) -> None:
    empty = await agent(stack, tmp_path, "run", "")
    blank_follow = await agent(stack, tmp_path, "run", "  ", "--follow")

    assert empty.code == ExitCode.USAGE, empty.err
    assert "goal: String should have at least 1 character" in empty.err
    assert blank_follow.code == ExitCode.USAGE, blank_follow.err
    assert "goal: String should have at least 1 character" in blank_follow.err


async def test_an_unknown_task_exits_2_for_every_command(
    stack: RunningStack, tmp_path: Path
) -> None:
    for command in ("show", "follow", "cancel", "resume"):
        unknown = await agent(stack, tmp_path, command, "ffff")
        assert unknown.code == ExitCode.USAGE, (command, unknown.err)
        assert "no task id starts with ffff" in unknown.err


async def test_a_refused_key_exits_2_for_every_command(stack: RunningStack, tmp_path: Path) -> None:
    wrong_key = {"AGENT_API_KEY": "agk_wrong"}
    for args in (("tasks",), ("run", GOAL, "--follow")):
        refused = await agent(stack, tmp_path, *args, env=wrong_key)
        assert refused.code == ExitCode.USAGE, (args, refused.err)


async def test_an_unreachable_api_exits_6_for_every_command(tmp_path: Path) -> None:
    down = {"AGENT_API_URL": "http://127.0.0.1:9", "AGENT_API_KEY": "agk_any"}
    for args in (("tasks",), ("run", GOAL, "--follow"), ("show", UNKNOWN)):
        unreachable = await agent(None, tmp_path, *args, env=down)
        assert unreachable.code == ExitCode.UNAVAILABLE, (args, unreachable.err)
        assert "cannot reach the API" in unreachable.err


async def test_long_goals_come_from_a_file_or_stdin(stack: RunningStack, tmp_path: Path) -> None:
    # Arrange
    goal_file = tmp_path / "goal.txt"
    goal_file.write_text("Write a report on durable execution. " * 400)  # 14,800 characters
    too_long = tmp_path / "too-long.txt"
    too_long.write_text("x" * 1_000_000)

    # Act
    from_file = await agent(stack, tmp_path, "run", "--goal-file", str(goal_file), "--json")
    refused = await agent(stack, tmp_path, "run", "--goal-file", str(too_long))
    both = await agent(stack, tmp_path, "run", GOAL, "--goal-file", str(goal_file))
    process = await asyncio.create_subprocess_exec(
        AGENT,
        "run",
        "-",
        "--json",
        env=_env(stack, tmp_path),
        cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    process.stdin.write(b"A goal read from stdin\n")
    process.stdin.close()
    from_stdin = await _finish(process)

    # Assert
    assert from_file.code == ExitCode.OK, from_file.err
    assert '"goal":"Write a report on durable execution.' in from_file.out
    assert refused.code == ExitCode.USAGE
    assert "1,000,000 characters; the server takes at most 20,000" in refused.err
    assert both.code == ExitCode.USAGE
    assert "not both" in both.err
    assert from_stdin.code == ExitCode.OK, from_stdin.err
    assert '"goal":"A goal read from stdin"' in from_stdin.out
