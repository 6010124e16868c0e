"""Provider trouble on demand: an outage window and a requests-per-minute limit.

`POST /sim/outage {"status": 503, "seconds": 30}` makes every completion request fail with
`status` for `seconds`; `POST /sim/rate_limit
{"rpm": 60}` answers 429 (with `Retry-After` and `x-ratelimit-*` headers) to requests past
`rpm` in any sliding minute; `DELETE` on either lifts it. `GET /sim/stats` then reports
how many requests arrived, and how many of them the outage and the limit rejected, since
the last `POST /sim/stats/reset` (one count per test run).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

SECONDS_PER_MINUTE = 60.0


@dataclass
class Outage:
    """A window during which every completion request fails."""

    status: int
    until: float
    """`time.monotonic()` at which the outage ends."""

    def active(self, now: float) -> bool:
        """Whether the outage still lasts at `now`."""
        return now < self.until


@dataclass
class Verdict:
    """What the admin state decides for one request: pass, or fail with a status."""

    status: int | None = None
    """None lets the request through; else the HTTP status to answer with."""
    retry_after_seconds: float | None = None
    remaining_requests: int | None = None
    limit_requests: int | None = None


@dataclass
class ProviderTrouble:
    """The simulator's outage window, its rate limit, and the request counters."""

    outage: Outage | None = None
    rpm: int | None = None
    _admitted: deque[float] = field(default_factory=deque)
    requests_total: int = 0
    outage_rejected: int = 0
    rate_limited: int = 0

    def start_outage(self, status: int, seconds: float) -> None:
        """Fail every request with HTTP `status` for `seconds`."""
        self.outage = Outage(status=status, until=time.monotonic() + seconds)

    def end_outage(self) -> None:
        """Lift the outage now."""
        self.outage = None

    def set_rate_limit(self, rpm: int | None) -> None:
        """Answer 429 past `rpm` requests in any sliding minute (None lifts the limit)."""
        self.rpm = rpm
        self._admitted.clear()

    def reset_counts(self) -> None:
        """Zero the request counters (a new run starts)."""
        self.requests_total = self.outage_rejected = self.rate_limited = 0

    def judge(self, now: float | None = None) -> Verdict:
        """Count one arriving completion request and decide whether it may be served.

        Args:
            now: `time.monotonic()` (tests pass their own clock).

        Returns:
            The verdict: pass, or the status to fail it with.
        """
        now = time.monotonic() if now is None else now
        self.requests_total += 1
        if self.outage is not None:
            if self.outage.active(now):
                self.outage_rejected += 1
                return Verdict(status=self.outage.status)
            self.outage = None
        if self.rpm is None:
            return Verdict()
        window_start = now - SECONDS_PER_MINUTE
        while self._admitted and self._admitted[0] <= window_start:
            self._admitted.popleft()
        if len(self._admitted) >= self.rpm:
            self.rate_limited += 1
            wait = self._admitted[0] + SECONDS_PER_MINUTE - now
            return Verdict(
                status=429,
                retry_after_seconds=max(wait, 0.001),
                remaining_requests=0,
                limit_requests=self.rpm,
            )
        self._admitted.append(now)
        return Verdict(remaining_requests=self.rpm - len(self._admitted), limit_requests=self.rpm)

    def counts(self) -> dict[str, int]:
        """The request counters since the last reset."""
        return {
            "requests_total": self.requests_total,
            "outage_rejected": self.outage_rejected,
            "rate_limited": self.rate_limited,
        }


def rate_limit_headers(verdict: Verdict) -> dict[str, str]:
    """OpenAI's rate-limit headers for a verdict (empty without a limit)."""
    if verdict.limit_requests is None:
        return {}
    headers = {
        "x-ratelimit-limit-requests": str(verdict.limit_requests),
        "x-ratelimit-remaining-requests": str(verdict.remaining_requests or 0),
    }
    if verdict.retry_after_seconds is not None:
        seconds = verdict.retry_after_seconds
        headers["retry-after"] = str(math.ceil(seconds))
        headers["retry-after-ms"] = str(math.ceil(seconds * 1000))
        headers["x-ratelimit-reset-requests"] = f"{seconds:.3f}s"
    return headers
