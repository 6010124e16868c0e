"""Configuration of the simulator."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agent.config import Settings
from agent.llm.pricing import DEFAULT_MODEL_PRICES


class SimulatorConfig(BaseModel):
    """Global knobs of the simulator; per-request directives override the timing ones.

    Attributes:
        host: Interface to listen on.
        port: TCP port (0 picks a free one when run in-process).
        ttft_ms: Time to first token in milliseconds.
        tps: Output tokens per second; 0 means as fast as possible.
        output_tokens: Default length of worker answers, in tokens.
        hang_seconds: How long a `hang` fault holds a request (or until the client leaves).
        event_interval_ms: Minimum spacing of SSE events; tokens due within one interval
            are batched into one event so high `tps` never floods the event loop.
        retry_after_seconds: Default `Retry-After` of a 429 fault.
        models: Model ids listed by `GET /v1/models` (any model id is accepted).
    """

    model_config = ConfigDict(frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8899, ge=0, le=65535)
    ttft_ms: int = Field(default=100, ge=0)
    tps: float = Field(default=300.0, ge=0)
    output_tokens: int = Field(default=250, ge=1)
    hang_seconds: float = Field(default=600.0, gt=0)
    event_interval_ms: int = Field(default=50, ge=0)
    retry_after_seconds: float = Field(default=1.0, ge=0)
    models: tuple[str, ...] = tuple(DEFAULT_MODEL_PRICES)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> SimulatorConfig:
        """Build the configuration from `AGENT_SIM_*` settings.

        Args:
            settings: Service settings.
            **overrides: Field values taking precedence (e.g. CLI flags).

        Returns:
            The configuration.
        """
        values: dict[str, object] = {
            "host": settings.sim_host,
            "port": settings.sim_port,
            "ttft_ms": settings.sim_ttft_ms,
            "tps": settings.sim_tps,
            "output_tokens": settings.sim_output_tokens,
            "hang_seconds": settings.sim_hang_seconds,
            "event_interval_ms": settings.sim_event_interval_ms,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
