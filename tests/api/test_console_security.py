"""The console's security headers, and the console working under its CSP in Chromium.

A CSP violation would show in the page as a `securitypolicyviolation` event and a console
error; both are collected and must be empty after a full round (log in for the session only,
start a task, follow its live socket to the end).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from agent.llm.simulator.config import SimulatorConfig
from api.middleware import CONSOLE_CSP
from tests.agent.client.stack import RunningStack, running_stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
STEP_TIMEOUT_MS = 60_000
GOAL = "Write a short note on owls [milestones=2] [plan=sequential]"
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


@pytest.fixture
async def stack(
    temporal_dev_env: WorkflowEnvironment, database_url: str, redis_server_url: str
) -> AsyncIterator[RunningStack]:
    """Simulator, worker and API of this test."""
    sim = SimulatorConfig(port=0, ttft_ms=20, tps=400, output_tokens=40)
    async with running_stack(
        temporal_dev_env.client, database_url, redis_server_url, simulator=sim
    ) as running:
        yield running


async def test_console_pages_carry_the_security_headers(stack: RunningStack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        pages = [await http.get(path) for path in ("/", "/console/app.js", "/console/style.css")]
        config = await http.get("/console/config.json")
        api = await http.get("/v1/tasks")

    for response in [*pages, config]:
        assert response.status_code == 200, response.request.url
        assert response.headers["content-security-policy"] == CONSOLE_CSP
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
async def test_console_works_under_its_csp_with_a_session_only_key(stack: RunningStack) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            await page.add_init_script(RECORD_VIOLATIONS)
            console_errors: list[str] = []
            page.on(
                "console",
                lambda msg: console_errors.append(msg.text) if msg.type == "error" else None,
            )
            page_errors: list[str] = []
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            expect.set_options(timeout=STEP_TIMEOUT_MS)

            # Log in for this session only.
            await page.goto(f"{stack.api_url}/")
            await page.fill("#api-key", stack.api_key)
            await page.check("#key-session-only")
            await page.click("#login button[type=submit]")
            await expect(page.locator("#login-state")).to_have_text("saved for this session")
            stored = await page.evaluate(
                "[sessionStorage.getItem('agent.apiKey'), localStorage.getItem('agent.apiKey')]"
            )

            # Start a task and follow it live to its end (HTTP and the event socket).
            await expect(page.locator("#new-task")).to_be_visible()
            await page.fill("#new-task textarea[name=goal]", GOAL)
            await page.click("#new-task button[type=submit]")
            await page.wait_for_url("**/#/tasks/*")
            await expect(page.locator("#task-status")).to_have_text("completed")
            await expect(page.locator("#timeline .ev-TASK_COMPLETED")).to_have_count(1)
            violations = await page.evaluate("window.__cspViolations")

            # A new tab of the same browser context has no key (sessionStorage is per tab).
            other = await context.new_page()
            await other.goto(f"{stack.api_url}/")
            other_key = await other.evaluate("sessionStorage.getItem('agent.apiKey')")
        finally:
            await browser.close()

    assert stored == [stack.api_key, None]
    assert violations == []
    assert [text for text in console_errors if "Content Security Policy" in text] == []
    assert console_errors == []
    assert page_errors == []
    assert other_key is None
