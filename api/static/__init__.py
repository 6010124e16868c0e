"""The web console: static files (no build step) served by the API.

`GET /` is the console's page, `/console/*` its scripts and styles, and
`GET /console/config.json` the public hints it needs (the Temporal UI address, the socket
close codes). The console itself talks to the API only through the public HTTP API and event socket.
It keeps an API key in the browser, so its pages carry a strict Content-Security-Policy
(own origin only, no inline code, no framing), `nosniff` and `Referrer-Policy: no-referrer`
(`api.middleware.SecurityHeadersMiddleware`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from agent.config import Settings
from agent.contract.protocol import CONSOLE_CONFIG_PATH, ConsoleConfig
from api.middleware import SecurityHeadersMiddleware

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
CONSOLE_PREFIX = "/console"
INDEX_FILE = "index.html"


def mount_console(app: FastAPI, settings: Settings) -> None:
    """Serve the console at `/`; call after every API router is included.

    Args:
        app: The API application.
        settings: Where the Temporal UI is (`AGENT_TEMPORAL_UI_URL`) and the namespace.
    """
    config = ConsoleConfig(
        temporal_ui_url=settings.temporal_ui_url,
        temporal_namespace=settings.temporal_namespace,
        trace_ui_url=settings.trace_ui_url,
    )

    async def console_index() -> FileResponse:
        return FileResponse(CONSOLE_DIR / INDEX_FILE, headers={"Cache-Control": "no-cache"})

    async def console_config() -> ConsoleConfig:
        return config

    app.add_api_route("/", console_index, include_in_schema=False, methods=["GET"])
    app.add_api_route(
        CONSOLE_CONFIG_PATH,
        console_config,
        include_in_schema=False,
        methods=["GET"],
    )
    app.mount(CONSOLE_PREFIX, StaticFiles(directory=CONSOLE_DIR), name="console")
    app.add_middleware(
        SecurityHeadersMiddleware, page_paths=("/",), page_prefixes=(CONSOLE_PREFIX + "/",)
    )
