"""In-process token buckets: request rate per API key, failed authentications per address.

One bucket per key (or client address), refilled continuously at `rate` tokens a second up
to `burst`. The state lives in this process: with N API processes behind a balancer a key
gets up to N times the configured rate (each process enforces it on what it serves). The
map is bounded (least recently used buckets are dropped, which only ever forgives).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

DEFAULT_MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """A token bucket per key.

    Args:
        rate: Tokens added per second (the sustained rate); 0 disables the limit.
        burst: Capacity (the largest burst).
        max_buckets: Bound of the map.
        clock: Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = float(max(burst, 1))
        self._max = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """Whether a limit is configured at all."""
        return self._rate > 0

    def take(self, key: Hashable) -> float | None:
        """Spend one token of `key`'s bucket.

        Returns:
            None when allowed; else the seconds until a token is available (Retry-After).
        """
        if not self.enabled:
            return None
        bucket = self._refilled(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self._rate

    def exhausted(self, key: Hashable) -> float | None:
        """Like `take` without spending: the wait while the bucket is empty, else None."""
        if not self.enabled or key not in self._buckets:
            return None
        bucket = self._refilled(key)
        return None if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / self._rate

    def _refilled(self, key: Hashable) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=self._burst, updated=now)
            self._buckets[key] = bucket
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            self._buckets.move_to_end(key)
        return bucket


def retry_after_header(seconds: float) -> str:
    """`Retry-After` in whole seconds, at least 1 (the header has no fractions)."""
    return str(max(1, math.ceil(seconds)))


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The API process's limiters.

    Attributes:
        requests: Requests per API key (by key id).
        auth_failures: Rejected keys per client address.
    """

    requests: TokenBuckets
    auth_failures: TokenBuckets

    @classmethod
    def from_settings(
        cls,
        rate_per_second: float,
        burst: int,
        auth_failures_per_minute: float,
        auth_failure_burst: int,
    ) -> RequestLimits:
        """Build the limiters from the settings' values."""
        return cls(
            requests=TokenBuckets(rate_per_second, burst),
            auth_failures=TokenBuckets(auth_failures_per_minute / 60.0, auth_failure_burst),
        )
