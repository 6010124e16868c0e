"""`agent api`: the HTTP/WebSocket API on uvicorn."""

from __future__ import annotations

import typer

from agent.cli.errors import load_settings_or_exit
from agent.logging import configure_logging

WS_PING_TIMEOUT_SECONDS = 20.0
GRACEFUL_SHUTDOWN_SECONDS = 10


def api(
    host: str | None = typer.Option(None, help="Interface [AGENT_API_HOST, 127.0.0.1]."),
    port: int | None = typer.Option(None, help="TCP port [AGENT_API_PORT, 8000]."),
) -> None:
    """Serve the API (OpenAPI docs at http://HOST:PORT/docs)."""
    # Imported here so other `agent` commands do not pay for the web stack.
    import uvicorn

    from agent.temporal import TemporalSettingError, temporal_connect_options
    from api.main import create_app

    settings = load_settings_or_exit()
    # Checked before serving so that each is one line, not a failed lifespan's traceback.
    problem = settings.default_pepper_problem()
    if problem is not None:
        typer.echo(f"error: invalid setting {problem}", err=True)
        raise typer.Exit(code=2)
    try:
        temporal_connect_options(settings)
    except TemporalSettingError as exc:
        typer.echo(f"error: invalid setting {exc}", err=True)
        raise typer.Exit(code=2) from None
    configure_logging(settings.log_level, json=settings.log_json)
    bind_host = host or settings.api_host
    bind_port = port or settings.api_port
    typer.echo(f"API on http://{bind_host}:{bind_port} (docs at /docs)")
    config = uvicorn.Config(
        create_app(settings),
        host=bind_host,
        port=bind_port,
        log_config=None,
        access_log=False,
        ws="websockets-sansio",
        # Protocol-level keep-alive drops dead peers; the app also sends JSON pings.
        ws_ping_interval=settings.ws_ping_interval_seconds,
        ws_ping_timeout=WS_PING_TIMEOUT_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        proxy_headers=True,
    )
    uvicorn.Server(config).run()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("api")(api)
