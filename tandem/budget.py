"""One write budget per installation, shared by every worker through Redis.

GitHub's secondary limits allow about 80 content-creating requests a minute and 500 an hour
per installation, and ask for about a second between them. Each write reserves the earliest
slot that keeps all three, atomically (a Lua script over a sorted set of slot times), then
sleeps until its slot. A slot further away than max_wait is given back and the job is
rescheduled (RateLimited) rather than holding a worker.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import httpx
import redis
from githubkit.throttling import BaseThrottler

from tandem.errors import RateLimited

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})

# KEYS[1]: sorted set of reserved slot times. ARGV: now, spacing, per_minute, per_hour, member.
_RESERVE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local spacing = tonumber(ARGV[2])
local per_minute = tonumber(ARGV[3])
local per_hour = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 3600)
local slot = now
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if last[2] then slot = math.max(slot, tonumber(last[2]) + spacing) end
local nth = redis.call('ZRANGE', key, -per_minute, -per_minute, 'WITHSCORES')
if nth[2] then slot = math.max(slot, tonumber(nth[2]) + 60) end
nth = redis.call('ZRANGE', key, -per_hour, -per_hour, 'WITHSCORES')
if nth[2] then slot = math.max(slot, tonumber(nth[2]) + 3600) end
redis.call('ZADD', key, slot, ARGV[5])
redis.call('EXPIRE', key, 3700)
return tostring(slot)
"""


class WriteBudget(BaseThrottler):
    def __init__(
        self,
        connection: redis.Redis,
        *,
        key: str,
        spacing: float,
        per_minute: int,
        per_hour: int,
        max_wait: float,
    ):
        self.redis = connection
        self.key = key
        self.spacing = spacing
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.max_wait = max_wait
        self._reserve = connection.register_script(_RESERVE)

    def reserve(self) -> float:
        """Reserve the next write slot; returns how long to wait for it (seconds)."""
        member = uuid.uuid4().hex
        now = time.time()
        slot = float(self._reserve(keys=[self.key], args=[now, self.spacing, self.per_minute, self.per_hour, member]))
        wait = slot - now
        if wait > self.max_wait:
            self.redis.zrem(self.key, member)
            raise RateLimited(wait, "Tandem's write budget for this installation")
        return wait

    @contextlib.contextmanager
    def acquire(self, request: httpx.Request):
        if request.method in WRITE_METHODS and not request.url.path.endswith("/access_tokens"):
            wait = self.reserve()
            if wait > 0:
                time.sleep(wait)
        yield

    @contextlib.asynccontextmanager
    async def async_acquire(self, request: httpx.Request):
        raise NotImplementedError("Tandem's GitHub clients are synchronous")
        yield
