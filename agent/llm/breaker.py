"""A circuit breaker per provider route (endpoint and model), shared by one worker process.

Without it every task waits out an outage on its own backoff schedule, so 50 tasks send
50 requests per round to a provider that is down. With it, after
`AGENT_LLM_BREAKER_FAILURE_THRESHOLD` consecutive outage failures the route is *open*: no
request is sent; the calls are refused with the time until the probe
(`CircuitOpenError`, which the activity turns into a retry at that time, announced by
`LLM_WAITING`). After the cool-down (`AGENT_LLM_BREAKER_COOLDOWN_SECONDS`, doubled after
each failed probe up to the retry cap) the next call is the one *probe* (*half-open*);
calls arriving meanwhile wait for its outcome. The first success closes the breaker.

A call whose outage tolerance ends with this attempt (`last_chance`) does not wait for the
cool-down: it probes at once. The cool-down is the worker's, the tolerance each task's own
(10 s for one, an hour for another), so without this a task with a short tolerance could
give up, or pause again right after a person's `retry`, on failures seen before its call
began, without a single request of its own. It costs at most one request per call per
tolerance.

Only outage failures count (connection errors, timeouts, 408, 5xx, cut streams). Any other
answer, a 429 or a 4xx included, is the provider answering and counts as a success: rate
limits are handled by `Retry-After` and the model limits (`agent.llm.limits`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from agent.llm.errors import LLMErrorType

OUTAGE_ERROR_TYPES: frozenset[str] = frozenset(
    {
        LLMErrorType.CONNECTION_ERROR,
        LLMErrorType.TIMEOUT,
        LLMErrorType.REQUEST_TIMEOUT,
        LLMErrorType.SERVER_ERROR,
        LLMErrorType.STREAM_CUT,
    }
)
"""`LLMErrorType`s that count as the provider being down."""


class BreakerState(IntEnum):
    """A breaker's state; the value is the `agent_llm_breaker_state` gauge's."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True)
class BreakerConfig:
    """How a breaker opens and how long it stays open."""

    failure_threshold: int
    cooldown: float
    """Seconds before the first probe of an open breaker."""
    max_cooldown: float
    """Cap of the cool-down, which doubles after each failed probe."""


StateListener = Callable[[BreakerState], None]


class CircuitBreaker:
    """The breaker of one route (single event loop: no locks needed between awaits)."""

    def __init__(
        self,
        config: BreakerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: StateListener | None = None,
    ) -> None:
        """Create a closed breaker.

        Args:
            config: Threshold and cool-downs.
            clock: Monotonic seconds (tests pass their own).
            on_change: Called with the new state on every transition (metrics).
        """
        self._config = config
        self._clock = clock
        self._on_change = on_change
        self.state = BreakerState.CLOSED
        self._failures = 0
        self._cooldown = config.cooldown
        self._opened_at = 0.0
        self.last_error = ""
        """The last outage failure, named when a call is refused."""
        self._probe_done: asyncio.Event | None = None
        """Set while a probe is in flight; waiters of the half-open breaker await it."""

    def _set(self, state: BreakerState) -> None:
        if state is not self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(state)

    def retry_in(self) -> float:
        """Seconds until an open breaker lets its probe through (0 when not open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(self._opened_at + self._cooldown - self._clock(), 0.0)

    async def admit(self, *, last_chance: bool = False) -> bool:
        """Decide one call: True lets it through (maybe as the probe), False refuses it.

        A call that arrives while the probe is in flight waits for the probe's outcome
        (at most one cool-down), then is decided again.

        Args:
            last_chance: The call's outage tolerance ends with this attempt. It is not
                refused on the strength of failures it never saw: it skips the cool-down
                of an open breaker and becomes the probe, or, when a probe is in flight,
                waits for it and is refused only when that probe failed. So a task never
                gives up on the provider (pause or `provider_unavailable`) without a
                request of its own, or a probe it waited for, failing at its tolerance's
                end, however long the cool-down has grown.
        """
        witnessed = False
        for _ in range(2):
            if self.state is BreakerState.CLOSED:
                return True
            if self.state is BreakerState.OPEN:
                if self.retry_in() > 0 and (witnessed or not last_chance):
                    return False
                self._set(BreakerState.HALF_OPEN)
            if self._probe_done is None:
                self._probe_done = asyncio.Event()
                return True  # this call is the probe
            try:
                await asyncio.wait_for(self._probe_done.wait(), timeout=self._cooldown)
            except TimeoutError:
                return False
            witnessed = True
        return self.state is BreakerState.CLOSED

    def _end_probe(self) -> None:
        done, self._probe_done = self._probe_done, None
        if done is not None:
            done.set()

    def record_success(self) -> None:
        """The provider answered: close the breaker."""
        self._failures = 0
        self._cooldown = self._config.cooldown
        self._set(BreakerState.CLOSED)
        self._end_probe()

    def record_failure(self, error: str = "") -> None:
        """An outage failure: count it; open at the threshold; a failed probe reopens."""
        self.last_error = error or self.last_error
        if self.state is BreakerState.HALF_OPEN:
            self._cooldown = min(self._cooldown * 2, self._config.max_cooldown)
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)
            self._end_probe()
            return
        if self.state is BreakerState.OPEN:
            return  # a call sent before it opened: the breaker knows already
        self._failures += 1
        if self._failures >= self._config.failure_threshold:
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def record_neutral(self) -> None:
        """The call ended saying nothing of the provider (cancelled, an unexpected error).

        A probe that ends so frees its place: the next call probes.
        """
        if self.state is BreakerState.HALF_OPEN:
            self._end_probe()
