"""`/docs` and `/redoc` in headless Chromium with every request outside the API refused.

The pages must render the API's operations from assets the API serves itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent.client.stack import RunningStack
from tests.api.test_console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT_MS, stack

__all__ = ["stack"]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
)


async def test_docs_render_operations_with_no_network_but_the_api(stack: RunningStack) -> None:
    from playwright.async_api import Route, async_playwright, expect

    ARTIFACTS.mkdir(exist_ok=True)
    refused: list[str] = []

    async def only_the_api(route: Route) -> None:
        if route.request.url.startswith(stack.api_url):
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort("internetdisconnected")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            await context.route("**/*", only_the_api)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            expect.set_options(timeout=STEP_TIMEOUT_MS)

            # Act
            await page.goto(f"{stack.api_url}/docs")

            # Assert: Swagger UI lists the task operations.
            operations = page.locator(".opblock")
            await expect(operations.first).to_be_visible()
            assert await operations.count() >= 5
            await expect(
                page.locator(".opblock-summary-path", has_text="/v1/tasks").first
            ).to_be_visible()
            await expect(page.locator(".info .title")).to_contain_text("Durable agent tasks")
            await page.screenshot(path=str(ARTIFACTS / "docs-offline.png"), full_page=False)

            assert refused == []

            # ReDoc renders the same schema; its bundle only asks the internet for the
            # decorative "API docs by Redocly" logo, which may stay blank.
            await page.goto(f"{stack.api_url}/redoc")
            await expect(page.get_by_text("/v1/tasks").first).to_be_attached()
            assert [url for url in refused if not url.endswith("/logo-mini.svg")] == []
            assert errors == []
        finally:
            await browser.close()
