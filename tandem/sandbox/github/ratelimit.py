"""GitHub's primary REST rate limit: a request budget per identity per hour.

Installation tokens and app JWTs get ``installation_limit`` requests an hour
(GitHub: 5,000 at least), anonymous callers 60. Every API request but
``GET /rate_limit`` uses one; when none are left GitHub answers 403 "API rate
limit exceeded" until the window resets. The numbers are exposed in the
``x-ratelimit-*`` headers of every response.
"""

from __future__ import annotations

import threading
import time


class RateLimits:
    def __init__(self, installation_limit: int = 5000, anonymous_limit: int = 60, window: int = 3600):
        self.installation_limit = installation_limit
        self.anonymous_limit = anonymous_limit
        self.window = window
        self._lock = threading.Lock()
        self._buckets: dict[tuple, list[int]] = {}  # identity -> [used, reset]

    def _limit(self, identity: tuple) -> int:
        return self.anonymous_limit if identity[0] == "anonymous" else self.installation_limit

    def _bucket(self, identity: tuple, now: float) -> list[int]:
        bucket = self._buckets.get(identity)
        if bucket is None or now >= bucket[1]:
            bucket = self._buckets[identity] = [0, int(now) + self.window]
        return bucket

    def hit(self, identity: tuple) -> tuple[bool, dict]:
        """Count one request. Returns (allowed, numbers after counting)."""
        now = time.time()
        with self._lock:
            bucket = self._bucket(identity, now)
            limit = self._limit(identity)
            allowed = bucket[0] < limit
            if allowed:
                bucket[0] += 1
            return allowed, {
                "limit": limit,
                "remaining": max(0, limit - bucket[0]),
                "reset": bucket[1],
                "used": bucket[0],
            }

    def refund(self, identity: tuple) -> dict:
        """Give back one request (a 304 answer to a conditional request is free)."""
        with self._lock:
            bucket = self._bucket(identity, time.time())
            bucket[0] = max(0, bucket[0] - 1)
        return self.snapshot(identity)

    def snapshot(self, identity: tuple) -> dict:
        now = time.time()
        with self._lock:
            bucket = self._bucket(identity, now)
            limit = self._limit(identity)
            return {"limit": limit, "remaining": max(0, limit - bucket[0]), "reset": bucket[1], "used": bucket[0]}

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
