"""One write budget per installation, shared by every worker through Redis.

GitHub's secondary limits allow 80 content-creating requests a minute and 500 an hour per
installation, and ask for about a second between them. Each write reserves the earliest slot
that keeps Tandem's own, smaller, budget (settings: a margin under GitHub's numbers), atomically
(a Lua script over a sorted set of slot times), then sleeps until its slot. A slot further away
than max_wait is given back and the job is rescheduled (RateLimited) rather than holding a worker.

When GitHub answers "wait" all the same, the installation is held until the wait is over, for
every process: its writes after a secondary limit, every request after its primary limit.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass

import httpx
import orjson
import redis
from githubkit.throttling import BaseThrottler

from tandem.infra import metrics, redis_keys
from tandem.infra.errors import RateLimited

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})

# KEYS: the sorted set of reserved slot times; the hold on writes; the hold on every request.
# ARGV: now, spacing, per_minute, per_hour, member, minute, hour.
_RESERVE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local spacing = tonumber(ARGV[2])
local per_minute = tonumber(ARGV[3])
local per_hour = tonumber(ARGV[4])
local minute = tonumber(ARGV[6])
local hour = tonumber(ARGV[7])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - hour)
local slot = now
for _, hold in ipairs({KEYS[2], KEYS[3]}) do slot = math.max(slot, tonumber(redis.call('GET', hold) or '0')) end
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if last[2] then slot = math.max(slot, tonumber(last[2]) + spacing) end
local nth = redis.call('ZRANGE', key, -per_minute, -per_minute, 'WITHSCORES')
if nth[2] then slot = math.max(slot, tonumber(nth[2]) + minute) end
nth = redis.call('ZRANGE', key, -per_hour, -per_hour, 'WITHSCORES')
if nth[2] then slot = math.max(slot, tonumber(nth[2]) + hour) end
redis.call('ZADD', key, slot, ARGV[5])
redis.call('EXPIRE', key, math.ceil(hour) + 100)
return tostring(slot)
"""

# KEYS[1]: a hold. ARGV: until when, now. A later hold replaces an earlier one, never the reverse.
_HOLD = """
local held_until = tonumber(ARGV[1])
if held_until > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', math.ceil((held_until - tonumber(ARGV[2])) * 1000))
end
"""


@dataclass(frozen=True)
class Usage:
    """How much of an installation's write budget is taken (the dashboard's headroom)."""

    writes_last_minute: int  # slots reserved from a minute ago on (some may lie ahead)
    writes_last_hour: int
    held_seconds: float  # how long GitHub asked us to wait still (0: not held)


def usage(connection: redis.Redis, installation_id: int, *, minute: float = 60.0, hour: float = 3600.0) -> Usage:
    slots, writes_held, requests_held = redis_keys.write_budget(installation_id)
    now = time.time()
    with connection.pipeline(transaction=False) as pipe:
        pipe.zcount(slots, now - minute, "+inf")
        pipe.zcount(slots, now - hour, "+inf")
        pipe.mget(writes_held, requests_held)
        last_minute, last_hour, holds = pipe.execute()
    held = max((float(value) for value in holds if value is not None), default=now) - now
    return Usage(int(last_minute), int(last_hour), max(0.0, held))


def is_graphql_query(request: httpx.Request) -> bool:
    """A POST to GitHub's GraphQL endpoint that only reads (a query, not a mutation)."""
    if request.method != "POST" or not request.url.path.endswith("/graphql"):
        return False
    try:
        query = orjson.loads(request.content).get("query")
    except (orjson.JSONDecodeError, AttributeError, httpx.RequestNotRead):
        return False
    return isinstance(query, str) and query.lstrip().startswith(("query", "{"))


def is_write(request: httpx.Request) -> bool:
    """A content-creating request, as GitHub's secondary limits count them."""
    return request.method in WRITE_METHODS and not is_graphql_query(request)


def _counts(request: httpx.Request) -> bool:
    """The installation's own requests; minting its token is the app's (made with the app's JWT)."""
    return not request.url.path.endswith("/access_tokens")


class WriteBudget(BaseThrottler):
    def __init__(
        self,
        connection: redis.Redis,
        *,
        installation_id: int,
        spacing: float,
        per_minute: int,
        per_hour: int,
        max_wait: float,
        minute: float = 60.0,
        hour: float = 3600.0,
    ):
        self.redis = connection
        self.key, self.writes_held, self.requests_held = redis_keys.write_budget(installation_id)
        self.spacing = spacing
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.max_wait = max_wait
        # The windows' lengths: GitHub's minute and hour (shorter in tests and benchmarks).
        self.minute = minute
        self.hour = hour
        self._reserve = connection.register_script(_RESERVE)
        self._hold = connection.register_script(_HOLD)

    def reserve(self) -> float:
        """Reserve the next write slot; returns how long to wait for it (seconds)."""
        member = uuid.uuid4().hex
        now = time.time()
        slot = float(
            self._reserve(
                keys=[self.key, self.writes_held, self.requests_held],
                args=[now, self.spacing, self.per_minute, self.per_hour, member, self.minute, self.hour],
            )
        )
        wait = slot - now
        if wait > self.max_wait:
            self.redis.zrem(self.key, member)
            raise RateLimited(wait, "the write budget for this installation")
        return wait

    def hold(self, request: httpx.Request, seconds: float, *, primary: bool) -> None:
        """GitHub answered `request` "wait": until then, no write goes to this installation from
        any process; after its primary limit (or a limit on a read), no request at all."""
        if seconds <= 0 or not _counts(request):
            return
        held = self.requests_held if primary or not is_write(request) else self.writes_held
        now = time.time()
        self._hold(keys=[held], args=[now + seconds, now])

    def _read_wait(self) -> float:
        wait = float(self.redis.get(self.requests_held) or 0) - time.time()
        if wait > self.max_wait:
            raise RateLimited(wait, "GitHub's rate limit for this installation")
        return wait

    @contextlib.contextmanager
    def acquire(self, request: httpx.Request):
        if _counts(request):
            write = is_write(request)
            wait = self.reserve() if write else self._read_wait()
            if wait > 0:
                if write:
                    metrics.WRITE_BUDGET_WAIT_SECONDS.observe(wait)
                else:  # a read held by a rate limit GitHub set on this installation
                    metrics.RATE_LIMIT_WAITS.labels("slept").inc()
                time.sleep(wait)
        yield

    @contextlib.asynccontextmanager
    async def async_acquire(self, request: httpx.Request):
        raise NotImplementedError("Tandem's GitHub clients are synchronous")
        yield
