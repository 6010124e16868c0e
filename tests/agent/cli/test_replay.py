"""`agent replay`: recorded histories and a live server's histories against this code."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from agent.cli.durations import parse_duration
from agent.cli.replay import EXIT_ALL_REPLAYED, EXIT_REPLAY_FAILED, EXIT_USAGE
from agent.llm.simulator.config import SimulatorConfig
from tests.agent.cli.test_tasks_cli import agent
from tests.agent.client.stack import running_stack

HISTORIES = Path(__file__).resolve().parents[2] / "histories"
GOOD_HISTORY = HISTORIES / "v2" / "test_sequential_plan_completes.json"


def _broken_copy(source: Path, target: Path) -> Path:
    """A copy of `source` whose first activity has another name: the code cannot replay it."""
    history = json.loads(source.read_text())
    for event in history["events"]:
        scheduled = event.get("activityTaskScheduledEventAttributes")
        if scheduled is not None:
            scheduled["activityType"]["name"] = "renamed_activity"
            break
    else:
        raise AssertionError(f"{source} schedules no activity")
    target.write_text(json.dumps(history))
    return target


def test_parse_duration_reads_units_and_rejects_garbage() -> None:
    assert parse_duration("90m").total_seconds() == 5400
    assert parse_duration("7d").days == 7
    for bad in ("", "7", "d7", "3x", "-1d"):
        try:
            parse_duration(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


async def test_files_that_replay_exit_0(tmp_path: Path) -> None:
    # Act
    result = await agent(None, tmp_path, "replay", str(GOOD_HISTORY))

    # Assert
    assert result.code == EXIT_ALL_REPLAYED, result.err
    assert f"ok   {GOOD_HISTORY.stem}" in result.out
    assert "1 replayed from 1 file(s), 0 failed" in result.out


async def test_a_history_the_code_cannot_replay_is_named_and_exits_1(tmp_path: Path) -> None:
    # Arrange
    broken = _broken_copy(GOOD_HISTORY, tmp_path / "task-broken.json")

    # Act
    result = await agent(None, tmp_path, "replay", str(GOOD_HISTORY), str(broken))

    # Assert
    assert result.code == EXIT_REPLAY_FAILED, result.err
    assert f"ok   {GOOD_HISTORY.stem}" in result.out
    failed = [line for line in result.out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1
    assert "task-broken" in failed[0]
    assert "Nondeterminism" in failed[0]
    assert "renamed_activity" in failed[0]
    assert "2 replayed from 2 file(s), 1 failed" in result.out
    assert "WARN" not in result.out


async def test_bad_since_and_unreachable_server_are_usage_errors(tmp_path: Path) -> None:
    # Act
    bad_since = await agent(None, tmp_path, "replay", "--since", "soon")
    unreachable = await agent(
        None, tmp_path, "replay", "--since", "1d", env={"AGENT_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    )

    # Assert
    assert bad_since.code == EXIT_USAGE
    assert "--since" in bad_since.err
    assert unreachable.code == EXIT_USAGE
    assert "cannot read workflow histories from Temporal at 127.0.0.1:1" in unreachable.err
    assert "Traceback" not in unreachable.err


async def test_recent_workflows_of_the_server_replay(
    temporal_dev_env: WorkflowEnvironment,
    database_url: str,
    redis_server_url: str,
    tmp_path: Path,
) -> None:
    # Arrange: one task runs to completion on the dev server.
    address = temporal_dev_env.client.service_client.config.target_host
    sim = SimulatorConfig(port=0, ttft_ms=0, tps=0, output_tokens=20)
    async with running_stack(
        temporal_dev_env.client, database_url, redis_server_url, simulator=sim
    ) as stack:
        run = await agent(stack, tmp_path, "run", "Replay me [milestones=2]", "--follow", "--json")
        assert run.code == 0, run.err
        task_id = run.json_lines()[0]["task_id"]

    # Act
    result = await agent(
        None,
        tmp_path,
        "replay",
        "--since",
        "1h",
        "--limit",
        "1000",
        env={"AGENT_TEMPORAL_ADDRESS": address},
    )

    # Assert
    assert result.code == EXIT_ALL_REPLAYED, result.out + result.err
    assert f"ok   task-{task_id}" in result.out
    assert ", 0 failed" in result.out
