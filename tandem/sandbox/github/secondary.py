"""GitHub's secondary rate limits, enforced per caller (installation, app or anonymous).

GitHub documents (rate-limits-for-the-rest-api, "About secondary rate limits"): no more than 80
content-generating requests (POST, PATCH, PUT, DELETE) a minute and 500 an hour, and no more than
900 points a minute on the REST API (1 point for a GET, HEAD or OPTIONS, 5 for the others). A
request over a limit is answered 403 "You have exceeded a secondary rate limit" with
``retry-after``; here, the whole seconds until the windows have room again. GitHub does not say
how it counts: these are sliding windows, the strictest reading, over the requests it accepted.
Its other secondary limits (100 concurrent requests, 90 s of CPU time a minute) are not emulated.
``minute`` and ``hour`` can be shortened to compress time (tests, benchmarks).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class SecondaryLimits:
    writes_per_minute: int = 80
    writes_per_hour: int = 500
    points_per_minute: int = 900
    minute: float = 60.0
    hour: float = 3600.0


class SecondaryLimiter:
    def __init__(self, limits: SecondaryLimits):
        self.limits = limits
        self._lock = threading.Lock()
        self._writes: dict[tuple, deque[float]] = {}
        self._points: dict[tuple, deque[tuple[float, int]]] = {}

    def admit(self, identity: tuple, write: bool) -> int | None:
        """Count the request; or, over a limit, the seconds to wait (the request is not counted)."""
        limits, now = self.limits, time.time()
        cost = 5 if write else 1
        with self._lock:
            writes = self._writes.setdefault(identity, deque())
            while writes and writes[0] <= now - limits.hour:
                writes.popleft()
            points = self._points.setdefault(identity, deque())
            while points and points[0][0] <= now - limits.minute:
                points.popleft()
            free_at = []
            if write and len(writes) >= limits.writes_per_hour:
                free_at.append(writes[-limits.writes_per_hour] + limits.hour)
            if write and len(writes) >= limits.writes_per_minute:
                free_at.append(writes[-limits.writes_per_minute] + limits.minute)
            over = sum(spent for _, spent in points) + cost - limits.points_per_minute
            for when, spent in points:  # the points free up as the oldest leave the window
                if over <= 0:
                    break
                over -= spent
                free_at.append(when + limits.minute)
            if any(when > now for when in free_at):
                return max(1, math.ceil(max(free_at) - now))
            if write:
                writes.append(now)
            points.append((now, cost))
        return None
