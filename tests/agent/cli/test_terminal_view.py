"""`agent run --follow` as a person sees it: in a real terminal (tmux) of a given size.

The live view must fit the terminal (its header always visible), redraw in place (no
copies piling up in the scrollback), and keep the breakpoint transcript on screen.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from agent.llm.simulator.config import SimulatorConfig
from tests.agent.cli.terminal import TMUX, tmux_pane
from tests.agent.client.stack import RunningStack, running_stack

AGENT = str(Path(sys.executable).parent / "agent")
# Long enough to watch: eight milestones, slow streams.
GOAL = "Write a short report on durable execution [milestones=8] [output_tokens=120]"
HEADER = re.compile(r"^task\s+([0-9a-f]{8})\s+(running|paused|pending|completed)\b")

pytestmark = pytest.mark.skipif(TMUX is None, reason="needs tmux (apt-get install tmux)")


@pytest.fixture
async def stack(
    temporal_dev_env: WorkflowEnvironment, database_url: str, redis_server_url: str
) -> AsyncIterator[RunningStack]:
    """Simulator slow enough to see milestones at work, worker and API."""
    sim = SimulatorConfig(port=0, ttft_ms=20, tps=200, output_tokens=60)
    async with running_stack(
        temporal_dev_env.client, database_url, redis_server_url, simulator=sim
    ) as running:
        yield running


def _env(stack: RunningStack, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL")}
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        {
            "AGENT_DATA_DIR": str(data_dir),
            "AGENT_LOG_LEVEL": "WARNING",
            "AGENT_API_URL": stack.api_url,
            "AGENT_API_KEY": stack.api_key,
            "EDITOR": "true",
        }
    )
    return env


def _headers(lines: list[str]) -> list[str]:
    return [line for line in lines if HEADER.match(line)]


def _running_with_streams(screen: list[str]) -> bool:
    return any(HEADER.match(line) and "running" in line for line in screen) and any(
        "milestones done" in line for line in screen
    )


@pytest.mark.parametrize(("width", "height"), [(80, 24), (160, 50)])
async def test_live_view_fits_the_terminal_and_keeps_the_breakpoint_transcript(
    stack: RunningStack, tmp_path: Path, width: int, height: int
) -> None:
    command = [AGENT, "run", GOAL, "--breakpoint", "after_plan", "--follow"]
    async with tmux_pane(tmp_path, _env(stack, tmp_path), command, width, height) as pane:
        # Act 1: the task pauses after planning and the prompt waits.
        at_breakpoint = await pane.wait_for(
            lambda s: any(line.startswith("Action [") for line in s), "the breakpoint prompt"
        )
        # Act 2: continue; watch it run.
        await pane.type("continue", "Enter")
        mid_task = await pane.wait_for(_running_with_streams, "the running live view")
        history_mid_task = await pane.everything()
        done = await pane.wait_for(lambda s: any("[exit " in line for line in s), "the end")
        everything = await pane.everything()

    (tmp_path.parent / f"capture-{width}x{height}-breakpoint.txt").write_text(
        "\n".join(at_breakpoint)
    )
    (tmp_path.parent / f"capture-{width}x{height}-mid-task.txt").write_text("\n".join(mid_task))

    # Assert: the header (short id and status) and the progress are on screen mid-task.
    assert all(len(line) <= width for line in mid_task)
    assert _headers(mid_task), "\n".join(mid_task)
    assert any("milestones done" in line for line in mid_task)
    assert any("temporal" in line for line in mid_task)
    # The view redraws in place: one frame before the breakpoint stays (the transcript),
    # one live frame after it; never a scrollback full of copies.
    assert len(_headers(history_mid_task)) <= 2, "\n".join(history_mid_task)
    # The transcript of the breakpoint stays above the live view.
    text = "\n".join(everything)
    assert "Breakpoint after_plan" in text
    assert "Action [" in text
    assert "resumed: continue" in text
    assert text.index("Breakpoint after_plan") < text.index("resumed: continue")
    assert text.index("resumed: continue") < text.rindex("milestones done")
    # It ends with the summary and exit 0; the whole run left a few frames at most.
    assert "[exit 0]" in "\n".join(done)
    assert len(_headers(everything)) <= 3, text
