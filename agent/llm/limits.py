"""Client-side limits per model (`AGENT_MODEL_LIMITS`): tasks queue for capacity, not 429s.

Each worker process keeps, per limited model, the requests and tokens it sent in the last
minute (a sliding window, as providers count) and lets a call through only when both stay
within the model's `rpm` / `tpm`; otherwise the call waits in line (first come, first
served) while its activity keeps heartbeating. A call's tokens are counted as its prompt
plus its output cap when it starts, and corrected to the real usage when it ends.

The provider's rate-limit headers (`x-ratelimit-remaining-requests` / `-tokens`, with
`x-ratelimit-reset-*`) only ever tighten a configured limit: when the provider says fewer
remain than the window allows (other clients share the key), the difference is held as
used until the provider's reset.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

WINDOW_SECONDS = 60.0
"""Limits are per minute."""

REMAINING_REQUESTS_HEADER = "x-ratelimit-remaining-requests"
REMAINING_TOKENS_HEADER = "x-ratelimit-remaining-tokens"
RESET_REQUESTS_HEADER = "x-ratelimit-reset-requests"
RESET_TOKENS_HEADER = "x-ratelimit-reset-tokens"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(raw: str | None) -> float | None:
    """Seconds of an `x-ratelimit-reset-*` value (`"1s"`, `"6m0s"`, `"20ms"`, `"0.5"`)."""
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(raw)
    if not parts or "".join(n + u for n, u in parts) != raw:
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return max(int(float(raw)), 0)
    except ValueError:
        return None


@dataclass(frozen=True)
class Limit:
    """Requests and tokens per minute of one model (None: that one is unlimited)."""

    rpm: int | None = None
    tpm: int | None = None


class _Window:
    """Amounts used in the last minute, each entry `[expires_at, amount]`."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.entries: deque[list[float]] = deque()

    def used(self, now: float) -> float:
        while self.entries and self.entries[0][0] <= now:
            self.entries.popleft()
        return sum(e[1] for e in self.entries)

    def wait(self, amount: float, now: float) -> float:
        """Seconds until `amount` more fits (0: now)."""
        amount = min(amount, self.per_minute)  # a call above the limit goes alone
        free = self.per_minute - self.used(now)
        if amount <= free:
            return 0.0
        # Entries expire in order; find when enough of them have.
        needed = amount - free
        for expires_at, used in sorted(self.entries):
            needed -= used
            if needed <= 0:
                return max(expires_at - now, 0.001)
        return WINDOW_SECONDS

    def add(self, amount: float, now: float, expires_in: float = WINDOW_SECONDS) -> list[float]:
        entry = [now + expires_in, amount]
        self.entries.append(entry)
        # Tightening entries may expire before older ones: keep the deque ordered.
        if len(self.entries) > 1 and self.entries[-2][0] > entry[0]:
            self.entries = deque(sorted(self.entries))
        return entry

    def tighten(self, remaining: int, reset_in: float | None, now: float) -> None:
        excess = (self.per_minute - self.used(now)) - remaining
        if excess > 0:
            expires_in = min(reset_in, WINDOW_SECONDS) if reset_in is not None else WINDOW_SECONDS
            self.add(excess, now, expires_in)


@dataclass
class Grant:
    """One call's place in its model's windows; `settle` corrects its tokens."""

    token_entry: list[float] | None = None
    waited_seconds: float = 0.0

    def settle(self, tokens: int) -> None:
        """Replace the estimated tokens with the call's real usage."""
        if self.token_entry is not None:
            self.token_entry[1] = float(tokens)


class ModelLimiter:
    """The limits of one model in this process."""

    def __init__(
        self,
        limit: Limit,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Create the windows of `limit` (a None field is not limited)."""
        self._requests = _Window(limit.rpm) if limit.rpm is not None else None
        self._tokens = _Window(limit.tpm) if limit.tpm is not None else None
        self._clock = clock
        self._sleep = sleep
        self._line = asyncio.Lock()  # FIFO: asyncio.Lock wakes waiters in order

    def _wait(self, tokens: int, now: float) -> float:
        waits = [0.0]
        if self._requests is not None:
            waits.append(self._requests.wait(1, now))
        if self._tokens is not None:
            waits.append(self._tokens.wait(tokens, now))
        return max(waits)

    def wait_seconds(self, tokens: int) -> float:
        """Seconds a call of `tokens` tokens arriving now would wait (0: none)."""
        return self._wait(tokens, self._clock())

    async def acquire(self, tokens: int) -> Grant:
        """Wait in line until one request of about `tokens` tokens fits, then take it."""
        started = self._clock()
        async with self._line:
            while (wait := self._wait(tokens, self._clock())) > 0:
                await self._sleep(wait)
            now = self._clock()
            if self._requests is not None:
                self._requests.add(1, now)
            entry = self._tokens.add(tokens, now) if self._tokens is not None else None
        return Grant(token_entry=entry, waited_seconds=self._clock() - started)

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Tighten the windows to what the provider's rate-limit headers say remains."""
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        now = self._clock()
        remaining = _int_header(lowered, REMAINING_REQUESTS_HEADER)
        if self._requests is not None and remaining is not None:
            reset = parse_reset(lowered.get(RESET_REQUESTS_HEADER))
            self._requests.tighten(remaining, reset, now)
        remaining = _int_header(lowered, REMAINING_TOKENS_HEADER)
        if self._tokens is not None and remaining is not None:
            reset = parse_reset(lowered.get(RESET_TOKENS_HEADER))
            self._tokens.tighten(remaining, reset, now)


class ModelLimits:
    """The limiters of every limited model of one worker process."""

    def __init__(
        self,
        limits: Mapping[str, Limit],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Create one limiter per model with a limit."""
        self._limiters = {
            model: ModelLimiter(limit, clock=clock, sleep=sleep)
            for model, limit in limits.items()
            if limit.rpm is not None or limit.tpm is not None
        }

    def get(self, model: str) -> ModelLimiter | None:
        """The model's limiter, or None when it is not limited."""
        return self._limiters.get(model)
