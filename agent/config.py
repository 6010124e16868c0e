"""Application settings: the one place that reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic import AliasChoices, AnyUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.contract.spend import SpendLimitAction
from agent.contract.task import (
    DEFAULT_HISTORY_MAX_EVENTS,
    MAX_MILESTONES,
    MIN_HISTORY_MAX_EVENTS,
    PLAN_MILESTONES_CEILING,
)
from agent.events.types import TaskComplexity

DEFAULT_TASK_QUEUE = "agent-tasks"
DEFAULT_API_KEY_PEPPER = "durable-agent"
"""Public, hence only for `agent up` and tests; the API refuses it elsewhere."""


def _env_names(field: str) -> AliasChoices:
    """`AGENT_<FIELD>` first, then the Temporal SDKs' own `TEMPORAL_<...>` variable."""
    return AliasChoices(f"AGENT_{field.upper()}", f"TEMPORAL_{field.upper()[9:]}")


def default_data_dir() -> Path:
    """Return the per-user directory where `agent up` keeps its state."""
    return Path(platformdirs.user_data_dir("durable-agent"))


class InsecureSettingError(RuntimeError):
    """A setting still has a public default that is unsafe outside `agent up`."""


class ModelPrice(BaseSettings):
    """Price of one model in USD per million tokens."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


class ModelLimit(BaseSettings):
    """Client-side limits of one model per worker process (None: unlimited)."""

    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)


STRUCTURED_OUTPUT_MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "o4-mini",
)
"""OpenAI models that support `response_format={"type": "json_schema", ...}`."""


class Settings(BaseSettings):
    """Service configuration, read from `AGENT_*` variables and `.env`.

    Every URL left unset means "start or use the embedded default" for `agent up`
    and "not configured" for the standalone processes.
    """

    model_config = SettingsConfigDict(
        env_prefix="AGENT_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        # An empty variable (`AGENT_LLM_API_KEY=` in compose) means unset, not "".
        env_ignore_empty=True,
        # Fields with Temporal's variable names as aliases stay settable by name.
        populate_by_name=True,
    )

    # Storage and orchestration.
    database_url: SecretStr | None = None
    redis_url: str | None = None
    # Temporal: each also reads the variable Temporal's CLI and SDKs use (`TEMPORAL_ADDRESS`,
    # `TEMPORAL_API_KEY`, `TEMPORAL_TLS_CLIENT_CERT_PATH`, ...); `AGENT_*` wins when both are set.
    temporal_address: str | None = Field(
        default=None, validation_alias=_env_names("temporal_address")
    )
    temporal_namespace: str = Field(
        default="default", validation_alias=_env_names("temporal_namespace")
    )
    temporal_api_key: SecretStr | None = Field(
        default=None, validation_alias=_env_names("temporal_api_key")
    )
    temporal_tls: bool | None = Field(
        default=None,
        validation_alias=_env_names("temporal_tls"),
        description="TLS on or off; unset = on when an API key or any TLS file is set.",
    )
    temporal_tls_client_cert_path: Path | None = Field(
        default=None, validation_alias=_env_names("temporal_tls_client_cert_path")
    )
    temporal_tls_client_key_path: Path | None = Field(
        default=None, validation_alias=_env_names("temporal_tls_client_key_path")
    )
    temporal_tls_server_ca_cert_path: Path | None = Field(
        default=None, validation_alias=_env_names("temporal_tls_server_ca_cert_path")
    )
    temporal_tls_server_name: str | None = Field(
        default=None, validation_alias=_env_names("temporal_tls_server_name")
    )
    temporal_connect_timeout_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long the API's and the worker's start-up retry an unreachable "
        "Temporal; 0 = one try.",
    )
    task_queue: str = DEFAULT_TASK_QUEUE
    temporal_ui_url: str | None = None

    # LLM provider. With neither set, `agent up` starts the bundled simulator.
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    llm_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    llm_outage_tolerance: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds an LLM call waits out a provider outage before the task gives up "
        "on it (`provider_unavailable`); tasks may set their own.",
    )
    llm_retry_max_interval_seconds: float = Field(
        default=60.0, gt=0, description="Cap of the exponential backoff between LLM attempts."
    )
    llm_breaker_failure_threshold: int = Field(
        default=5,
        ge=1,
        description="Consecutive outage failures of one endpoint+model that open its breaker "
        "(each worker process).",
    )
    llm_breaker_cooldown_seconds: float = Field(
        default=5.0,
        gt=0,
        description="First wait of an open breaker before its probe call (doubles after each "
        "failed probe, up to the retry cap).",
    )
    llm_fallback_models: dict[str, str] = Field(
        default_factory=dict,
        description="Model -> model called instead while its breaker is open, e.g. "
        '`{"gpt-4o": "gpt-4o-mini"}`.',
    )
    model_limits: dict[str, ModelLimit] = Field(
        default_factory=dict,
        description="Client-side limits per model, e.g. "
        '`{"gpt-4o-mini": {"rpm": 500, "tpm": 200000}}` (each worker process).',
    )
    model_prices: dict[str, ModelPrice] = Field(default_factory=dict)
    model_routes: dict[str, str] = Field(
        default_factory=dict,
        description="Overrides as '<complexity>.<role>' -> model, e.g. 'complex.planner'.",
    )
    structured_output_models: list[str] = Field(
        default_factory=lambda: list(STRUCTURED_OUTPUT_MODELS),
        description="Models whose provider honours `response_format` with a JSON schema: the "
        "planner and verifier ask them for structured output (others get JSON mode and a "
        "re-ask on a bad answer). `*` means every model; an empty list turns it off.",
    )
    default_complexity: TaskComplexity = TaskComplexity.MODERATE
    context_budgets: dict[str, int] = Field(
        default_factory=dict,
        description="Context budget overrides in tokens, keyed like `model_routes`.",
    )

    # LLM simulator (`agent sim`, started by `agent up` when no real LLM is configured).
    sim_host: str = "127.0.0.1"
    sim_port: int = Field(default=8899, ge=1, le=65535)
    sim_ttft_ms: int = Field(default=100, ge=0)
    sim_tps: float = Field(default=300.0, ge=0, description="Tokens per second; 0 = unlimited.")
    sim_output_tokens: int = Field(default=250, ge=1)
    sim_hang_seconds: float = Field(default=600.0, gt=0)
    sim_event_interval_ms: int = Field(default=50, ge=0)

    # API.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_key_pepper: SecretStr = SecretStr(DEFAULT_API_KEY_PEPPER)
    allow_default_pepper: bool = Field(
        default=False,
        description="Let the API run with the public default pepper (`agent up` sets it).",
    )
    api_db_pool_size: int = Field(
        default=10,
        ge=1,
        description="Each API process opens up to twice this many PostgreSQL connections.",
    )
    ws_queue_size: int = Field(default=1000, ge=10)
    ws_ping_interval_seconds: float = Field(default=20.0, gt=0)
    rate_limit_per_second: float = Field(
        default=50.0, ge=0, description="Sustained requests per second per API key; 0 = off."
    )
    rate_limit_burst: int = Field(default=200, ge=1, description="Burst per API key.")
    user_daily_token_limit: int | None = Field(
        default=None, ge=1, description="Tokens a user may spend per UTC day (unset: no limit)."
    )
    user_daily_cost_limit_usd: float | None = Field(
        default=None, gt=0, description="USD a user may spend per UTC day (unset: no limit)."
    )
    spend_limit_action: SpendLimitAction = Field(
        default=SpendLimitAction.PAUSE,
        description="What a running task does at its user's daily spend limit: `pause` "
        "(at budget_exhausted, until the UTC day resets or a person resumes) or `fail`.",
    )
    user_max_running_tasks: int | None = Field(
        default=None,
        ge=1,
        description="Tasks a user may have running at once; more wait queued (unset: no limit).",
    )
    auth_failures_per_minute: float = Field(
        default=30.0, ge=0, description="Rejected keys per client address per minute; 0 = off."
    )
    auth_failure_burst: int = Field(
        default=30, ge=1, description="Rejected keys a client address may send in a burst."
    )

    # Clients (`agent run`, `agent follow`, ...): else the `stack.json` of `agent up`.
    api_url: str | None = None
    api_key: SecretStr | None = None

    # Tasks: limits fixed in each task's workflow input when it is created.
    max_plan_milestones: int = Field(
        default=MAX_MILESTONES,
        ge=1,
        le=PLAN_MILESTONES_CEILING,
        description="The largest plan a task accepts; a planner answer or plan edit past it "
        "is refused with the reason.",
    )
    history_max_events: int = Field(
        default=DEFAULT_HISTORY_MAX_EVENTS,
        ge=MIN_HISTORY_MAX_EVENTS,
        description="A task's workflow run continues as new before its history passes this "
        "many events (Temporal warns at 10,240).",
    )

    # Worker.
    max_concurrent_activities: int = Field(default=200, ge=1)
    max_concurrent_workflow_tasks: int = Field(default=100, ge=1)
    worker_metrics_address: str | None = Field(
        default=None,
        description="host:port serving the worker's Temporal SDK metrics for Prometheus.",
    )
    worker_db_pool_size: int = Field(
        default=10,
        ge=1,
        description="Each worker process opens up to twice this many PostgreSQL connections.",
    )

    # Observability (tracing itself is configured by the standard `OTEL_*` variables).
    trace_ui_url: str | None = Field(
        default=None,
        description="Trace viewer URL with `{trace_id}`, e.g. Jaeger's "
        "`http://localhost:16686/trace/{trace_id}`; the console links events to their trace.",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the worker's `/metrics` (project metrics and, merged in, the "
        "Temporal SDK's); unset = not served.",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1",
        description="Interface the worker's `/metrics` listens on.",
    )

    # Tools: MCP servers in the `{"mcpServers": {...}}` format (agent/tools/config.py).
    mcp_servers: str | None = Field(
        default=None, description="The MCP server configuration as JSON text."
    )
    mcp_config: Path | None = Field(
        default=None, description="A file holding the MCP server configuration."
    )

    # Event retention.
    event_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Days after a task finished before a daily Temporal Schedule "
        "(`agent-event-retention`, kept by the worker) deletes its events and outputs; "
        "unset = no automatic retention (an existing schedule is paused).",
    )

    # Prompt cache.
    prompt_cache_ttl_seconds: int = Field(default=3600, ge=1)

    # Runtime.
    data_dir: Path = Field(default_factory=default_data_dir)
    log_level: str = "INFO"
    log_json: bool | None = None

    @model_validator(mode="after")
    def _check_one_mcp_source(self) -> Settings:
        if self.mcp_servers is not None and self.mcp_config is not None:
            raise ValueError("set AGENT_MCP_SERVERS or AGENT_MCP_CONFIG, not both")
        return self

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        if not raw.startswith(("postgresql://", "postgresql+asyncpg://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        AnyUrl(raw)
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("llm_base_url")
    @classmethod
    def _check_llm_base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// URL")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def uses_real_llm(self) -> bool:
        """Whether a provider (base URL or key) is configured instead of the simulator."""
        return self.llm_base_url is not None or self.llm_api_key is not None

    def default_pepper_problem(self) -> str | None:
        """Why the API must not start with these settings' pepper, as one line; else None.

        Keys hashed with the public default pepper are as good as unsalted, so outside
        `agent up` (which sets `allow_default_pepper`) it is refused.
        """
        if self.allow_default_pepper:
            return None
        if self.api_key_pepper.get_secret_value() != DEFAULT_API_KEY_PEPPER:
            return None
        return (
            "AGENT_API_KEY_PEPPER: is the public default; set a random secret "
            "(e.g. `openssl rand -hex 32`) before creating API keys"
        )

    def database_url_value(self) -> str:
        """Return the database URL in SQLAlchemy's asyncpg form.

        Raises:
            RuntimeError: When no database URL is configured.
        """
        if self.database_url is None:
            raise RuntimeError("AGENT_DATABASE_URL is not set")
        return to_asyncpg_url(self.database_url.get_secret_value())


def to_asyncpg_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the `postgresql+asyncpg://` scheme."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def to_libpq_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the plain `postgresql://` scheme asyncpg accepts."""
    return to_asyncpg_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process's settings, read once."""
    return Settings()
