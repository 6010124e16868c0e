"""`agent sim`: the OpenAI-compatible LLM simulator."""

from __future__ import annotations

import typer

from agent.cli.errors import load_settings_or_exit
from agent.logging import configure_logging


def sim(
    port: int | None = typer.Option(None, help="TCP port [AGENT_SIM_PORT, 8899]."),
    host: str | None = typer.Option(None, help="Interface [AGENT_SIM_HOST, 127.0.0.1]."),
    ttft_ms: int | None = typer.Option(None, help="Time to first token, ms [AGENT_SIM_TTFT_MS]."),
    tps: float | None = typer.Option(
        None, help="Output tokens per second, 0 = unlimited [AGENT_SIM_TPS]."
    ),
    output_tokens: int | None = typer.Option(
        None, help="Worker answer length in tokens [AGENT_SIM_OUTPUT_TOKENS]."
    ),
) -> None:
    """Serve the deterministic LLM simulator (OpenAI API at http://HOST:PORT/v1)."""
    # Imported here so other `agent` commands do not pay for the web stack.
    import uvicorn

    from agent.llm.simulator.app import create_simulator_app
    from agent.llm.simulator.config import SimulatorConfig
    from agent.llm.simulator.server import uvicorn_config

    settings = load_settings_or_exit()
    configure_logging(settings.log_level, json=settings.log_json)
    config = SimulatorConfig.from_settings(
        settings, port=port, host=host, ttft_ms=ttft_ms, tps=tps, output_tokens=output_tokens
    )
    typer.echo(
        f"LLM simulator on http://{config.host}:{config.port}/v1 "
        f"(ttft {config.ttft_ms} ms, {config.tps:g} tok/s, {config.output_tokens} tokens)"
    )
    server = uvicorn.Server(
        uvicorn_config(create_simulator_app(config), config.host, config.port, log_level="info")
    )
    server.run()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("sim")(sim)
