"""The web console in headless Chromium against the real stack.

Starts a task with a breakpoint from the page, sees it pause, resumes it from the page
and sees it complete. Screenshots go to `test-artifacts/` (kept by CI as artifacts).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from agent.llm.simulator.config import SimulatorConfig
from tests.agent.client.stack import RunningStack, running_stack, time_servers

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
STEP_TIMEOUT_MS = 60_000
GOAL = "Write a short report on durable execution [plan=diamond] [milestones=4]"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
)


@pytest.fixture
async def stack(
    temporal_dev_env: WorkflowEnvironment, database_url: str, redis_server_url: str
) -> AsyncIterator[RunningStack]:
    """Simulator (slow enough to see milestones run), worker and API of this test."""
    sim = SimulatorConfig(port=0, ttft_ms=50, tps=120, output_tokens=60)
    async with running_stack(
        temporal_dev_env.client, database_url, redis_server_url, simulator=sim
    ) as running:
        yield running


async def test_console_starts_pauses_resumes_and_completes_a_task(stack: RunningStack) -> None:
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            expect.set_options(timeout=STEP_TIMEOUT_MS)

            # Arrange: log in through ?token= and start a task with a breakpoint.
            await page.goto(f"{stack.api_url}/?token={stack.api_key}")
            await expect(page.locator("#new-task")).to_be_visible()
            assert "token=" not in page.url
            await page.fill("#new-task textarea[name=goal]", GOAL)
            await page.check("#new-task input[value=after_plan]")
            await page.click("#new-task button[type=submit]")

            # Act 1: the task page shows the plan and the breakpoint.
            await page.wait_for_url("**/#/tasks/*")
            await expect(page.locator("#task-status")).to_have_text("paused")
            await expect(page.locator("#resume-form")).to_be_visible()
            await expect(page.locator("svg.dag .node")).to_have_count(4)
            await expect(page.locator("#timeline .ev-BREAKPOINT_HIT")).to_have_count(1)
            link = await page.locator("#temporal-link").get_attribute("href")
            await page.screenshot(path=str(ARTIFACTS / "console-task-paused.png"), full_page=True)

            # Act 2: resume from the page; watch it run.
            await page.select_option("#resume-action", "continue")
            await page.click("#resume")
            await expect(page.locator("#resume-form")).to_have_count(0)
            running = page.locator('svg.dag .node[data-status="in_progress"]')
            await expect(running.first).to_be_visible()
            await page.screenshot(path=str(ARTIFACTS / "console-task.png"), full_page=True)

            # Assert: it completes with a summary, every milestone passed.
            await expect(page.locator("#task-status")).to_have_text("completed")
            await expect(page.locator("#task-result pre.summary")).not_to_be_empty()
            await expect(page.locator('svg.dag .node[data-status="passed"]')).to_have_count(4)
            await expect(page.locator("#timeline .ev-TASK_COMPLETED")).to_have_count(1)
            await expect(page.locator("#timeline .ev-BREAKPOINT_RESUMED")).to_have_count(1)
            await page.screenshot(path=str(ARTIFACTS / "console-task-done.png"), full_page=True)
            seqs = await page.locator("#timeline li").evaluate_all(
                "items => items.map(li => Number(li.dataset.seq))"
            )
            assert seqs == list(range(1, len(seqs) + 1))
            assert link is not None
            assert link.startswith(f"{stack.settings.temporal_ui_url}/namespaces/default/")
            assert errors == []

            # The list shows the task too.
            await page.goto(f"{stack.api_url}/#/")
            await expect(page.locator("#task-list tbody tr")).to_have_count(1)
        finally:
            await browser.close()


TOOL_GOAL = (
    'What time is it in UTC? [milestones=1] [tool=time.get_current_time {"timezone": "UTC"}]'
)


@pytest.fixture
async def tool_stack(
    temporal_dev_env: WorkflowEnvironment, database_url: str, redis_server_url: str
) -> AsyncIterator[RunningStack]:
    """The stack with `mcp-server-time`, whose calls need a person's approval."""
    async with running_stack(
        temporal_dev_env.client,
        database_url,
        redis_server_url,
        mcp_servers=time_servers(approve=["get_current_time"]),
    ) as running:
        yield running


async def test_console_approves_a_tool_call_and_shows_it(tool_stack: RunningStack) -> None:
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            expect.set_options(timeout=STEP_TIMEOUT_MS)

            # Arrange: start a task whose model calls the tool; the policy pauses it there.
            await page.goto(f"{tool_stack.api_url}/?token={tool_stack.api_key}")
            await page.fill("#new-task textarea[name=goal]", TOOL_GOAL)
            await page.click("#new-task button[type=submit]")
            await page.wait_for_url("**/#/tasks/*")

            # Act 1: the pause panel shows the call and only the allowed actions.
            await expect(page.locator("#task-status")).to_have_text("paused")
            await expect(page.locator("#paused-tool-server")).to_have_text("time")
            await expect(page.locator("#paused-tool-name")).to_have_text("get_current_time")
            await expect(page.locator("#paused-tool-arguments")).to_contain_text(
                '"timezone": "UTC"'
            )
            options = await page.locator("#resume-action option").all_inner_texts()
            await page.screenshot(path=str(ARTIFACTS / "console-before-tool.png"), full_page=True)

            # Act 2: an edit that is not JSON is refused on the page; then approve.
            await page.select_option("#resume-action", "edit")
            await expect(page.locator("#arguments-editor")).to_be_visible()
            await page.fill("#arguments-editor", "{nope")
            await page.click("#resume")
            await expect(page.locator("#resume-form .error")).to_contain_text("invalid arguments")
            await expect(page.locator("#task-status")).to_have_text("paused")
            await page.select_option("#resume-action", "approve")
            await expect(page.locator("#arguments-editor")).to_be_hidden()
            await page.click("#resume")

            # Assert: it completes; the timeline and the milestone pane show the call.
            await expect(page.locator("#task-status")).to_have_text("completed")
            await expect(page.locator("#resume-form")).to_have_count(0)
            done = page.locator("#timeline .ev-TOOL_CALL_COMPLETED")
            await expect(done).to_have_count(1)
            await expect(done).to_contain_text("tool time.get_current_time · ")
            await expect(done).to_contain_text(" chars")
            await expect(page.locator("#timeline .ev-TOOL_CALL_STARTED")).to_have_count(1)
            row = page.locator("#milestones tr.tool-call-row")
            await expect(row).to_have_count(1)
            await expect(row).to_contain_text("time.get_current_time")
            await expect(row).to_contain_text("completed")
            await expect(row).to_contain_text('"timezone": "UTC"')
            await expect(page.locator("#totals-tool-calls")).to_have_text("1")
            await expect(page.locator("#task-tools")).to_contain_text("time.get_current_time")
            await page.screenshot(path=str(ARTIFACTS / "console-tool-done.png"), full_page=True)
            assert options == ["approve", "deny", "edit", "abort"]
            assert errors == []
        finally:
            await browser.close()
