"""One worker, one view of the provider: breakers, fallback routes and model limits together.

`ProviderGuard` belongs to an `LLMClient` (one per worker process), so every activity of the
process shares it. Before a call is sent, `admit` asks the route's breaker
(`agent.llm.breaker`): a closed breaker lets it through; an open one sends it to the
model's fallback (`AGENT_LLM_FALLBACK_MODELS`) when that route's breaker lets it through,
else refuses it with `CircuitOpenError`. Then the call waits in line for its model's
capacity (`agent.llm.limits`). `Admission.finished` reports how the call ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import openai
import structlog

from agent.config import Settings
from agent.llm.breaker import (
    OUTAGE_ERROR_TYPES,
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
)
from agent.llm.errors import CircuitOpenError, to_application_error
from agent.llm.limits import Grant, Limit, ModelLimiter, ModelLimits
from agent.observability.metrics import project_metrics

logger = structlog.get_logger(__name__)


def endpoint_label(base_url: str) -> str:
    """The bounded `endpoint` label of a base URL: `host:port`."""
    url = urlsplit(base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.hostname or ''}:{port}"


def _is_outage(error: Exception) -> bool:
    error_type = to_application_error(error).type
    return error_type is not None and error_type in OUTAGE_ERROR_TYPES


@dataclass
class Admission:
    """A call let through: the model to call, and where to report its end."""

    model: str
    breaker: CircuitBreaker
    limiter: ModelLimiter | None = None
    grant: Grant | None = None
    fallback_from: str | None = None
    """The model asked for, when its open breaker sent the call to `model`."""
    _done: bool = field(default=False, repr=False)

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Pass the provider's rate-limit headers to the model's limiter."""
        if self.limiter is not None:
            self.limiter.observe_headers(headers)

    def finished(self, error: BaseException | None, tokens: int | None = None) -> None:
        """Report the call's end once: a success, an outage failure, or neither.

        Args:
            error: What the call raised; None when the provider answered.
            tokens: Tokens the call really used, when known (corrects the limiter).
        """
        if self._done:
            return
        self._done = True
        if tokens is not None and self.grant is not None:
            self.grant.settle(tokens)
        if isinstance(error, openai.APIStatusError) and error.response is not None:
            self.observe_headers(error.response.headers)
        if error is None:
            self.breaker.record_success()
        elif isinstance(error, asyncio.CancelledError | GeneratorExit):
            self.breaker.record_neutral()
        elif isinstance(error, Exception) and _is_outage(error):
            self.breaker.record_failure(to_application_error(error).message)
        elif isinstance(error, openai.APIStatusError):
            self.breaker.record_success()  # the provider answered (429, 4xx)
        else:
            self.breaker.record_neutral()


class ProviderGuard:
    """The breakers and limiters of one endpoint in one process."""

    def __init__(self, settings: Settings, base_url: str) -> None:
        """Read the breaker settings, fallback routes and model limits (no I/O)."""
        self.base_url = base_url
        self._endpoint = endpoint_label(base_url)
        self._config = BreakerConfig(
            failure_threshold=settings.llm_breaker_failure_threshold,
            cooldown=settings.llm_breaker_cooldown_seconds,
            max_cooldown=max(
                settings.llm_breaker_cooldown_seconds, settings.llm_retry_max_interval_seconds
            ),
        )
        self._fallbacks = dict(settings.llm_fallback_models)
        self._limits = ModelLimits(
            {model: Limit(rpm=lim.rpm, tpm=lim.tpm) for model, lim in settings.model_limits.items()}
        )
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, model: str) -> CircuitBreaker:
        """The breaker of `model` on this endpoint (created closed on first use)."""
        breaker = self._breakers.get(model)
        if breaker is None:
            gauge = project_metrics().llm_breaker_state.labels(self._endpoint, model)
            transitions = project_metrics().llm_breaker_transitions

            def changed(state: BreakerState) -> None:
                gauge.set(state.value)
                transitions.labels(self._endpoint, model, state.name.lower()).inc()
                logger.warning(
                    "llm_breaker_state", endpoint=self.base_url, model=model, state=state.name
                )

            gauge.set(BreakerState.CLOSED.value)
            breaker = CircuitBreaker(self._config, on_change=changed)
            self._breakers[model] = breaker
        return breaker

    def limiter(self, model: str) -> ModelLimiter | None:
        """The limiter of `model`, or None when it has no limits."""
        return self._limits.get(model)

    async def _route(self, model: str, last_chance: bool) -> tuple[str, CircuitBreaker, str | None]:
        breaker = self.breaker(model)
        if await breaker.admit(last_chance=last_chance):
            return model, breaker, None
        fallback = self._fallbacks.get(model)
        if fallback is not None and fallback != model:
            fallback_breaker = self.breaker(fallback)
            if await fallback_breaker.admit():
                project_metrics().llm_fallback_calls.labels(model, fallback).inc()
                return fallback, fallback_breaker, model
        project_metrics().llm_breaker_refusals.labels(self._endpoint, model).inc()
        raise CircuitOpenError(
            self.base_url, model, breaker.retry_in() or self._config.cooldown, breaker.last_error
        )

    async def admit(self, model: str, tokens: int, *, last_chance: bool = False) -> Admission:
        """Route one call and wait for its model's capacity.

        Args:
            model: The model the call asks for.
            tokens: Its estimated tokens (prompt plus output cap), for the tokens limit.
            last_chance: The call gives up if this attempt fails: an open breaker lets it
                probe at once (`CircuitBreaker.admit`).

        Returns:
            The admission: the model to call (the fallback while the model's breaker is
            open) and where to report the call's end.

        Raises:
            CircuitOpenError: The model's breaker (and its fallback's) is open; nothing
                was sent.
        """
        chosen, breaker, fallback_from = await self._route(model, last_chance)
        limiter = self._limits.get(chosen)
        grant = None
        if limiter is not None:
            try:
                grant = await limiter.acquire(tokens)
            except BaseException:
                breaker.record_neutral()
                raise
            if grant.waited_seconds > 0:
                project_metrics().llm_limit_wait_seconds.labels(chosen).observe(
                    grant.waited_seconds
                )
        return Admission(
            model=chosen, breaker=breaker, limiter=limiter, grant=grant, fallback_from=fallback_from
        )
