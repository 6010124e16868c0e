"""The API docs pages (`/docs` Swagger UI, `/redoc` ReDoc) with assets served by the API.

FastAPI's default pages load Swagger UI and ReDoc from a CDN, so offline they are blank.
The assets come from the `fastapi-offline` package (Swagger UI 5, which renders the
OpenAPI 3.1 schema FastAPI writes) and are served under `/docs-assets`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_PREFIX = "/docs-assets"
OAUTH2_REDIRECT_URL = DOCS_URL + "/oauth2-redirect"


def docs_assets_dir() -> Path:
    """Where the installed package keeps the Swagger UI and ReDoc bundles."""
    return Path(str(files("fastapi_offline") / "static"))


def mount_docs(app: FastAPI) -> None:
    """Serve `/docs` and `/redoc` from local assets; the app is built with both URLs None.

    Args:
        app: The API application (its `openapi_url` is what the pages load).
    """
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{ASSETS_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PREFIX}/favicon.png",
        )

    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{ASSETS_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_PREFIX}/favicon.png",
            with_google_fonts=False,
        )

    for path, page in (
        (DOCS_URL, swagger_ui),
        (OAUTH2_REDIRECT_URL, swagger_ui_redirect),
        (REDOC_URL, redoc),
    ):
        app.add_api_route(path, page, include_in_schema=False, methods=["GET"])
    app.mount(ASSETS_PREFIX, StaticFiles(directory=docs_assets_dir()), name="docs-assets")
