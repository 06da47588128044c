"""Redis and the RQ queues. Jobs carry plain ids and JSON, so a queued job survives a redeploy."""

from __future__ import annotations

import redis
import redis.asyncio
from rq import Queue
from rq.serializers import JSONSerializer

from tandem.infra.errors import ServiceUnavailable

WEBHOOKS = "webhooks"  # one job per webhook delivery
PAIRS = "pairs"  # opening and syncing pairs of PRs
DEFAULT = "default"
DASHBOARD = "dashboard"  # the dashboard's figures computed afresh (tandem.domain.dashboard.report)
# A worker serves them in this order: deliveries first, they are what people wait on; the
# dashboard's figures last, as its pages show the figures before while they are computed.
ALL = (WEBHOOKS, PAIRS, DEFAULT, DASHBOARD)


def connect(url: str) -> redis.Redis:
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30)
    except ValueError as exc:
        raise ServiceUnavailable(f"TANDEM_REDIS_URL: {exc}") from None


def async_twin(connection: redis.Redis) -> redis.asyncio.Redis:
    """A client for an event loop, to the same Redis with the same options as a connection made here.
    Usable only in the loop it is first used in."""
    pool = connection.connection_pool
    kind = getattr(redis.asyncio.connection, pool.connection_class.__name__)
    return redis.asyncio.Redis(
        connection_pool=redis.asyncio.ConnectionPool(connection_class=kind, **pool.connection_kwargs)
    )


def check_redis(connection: redis.Redis) -> None:
    try:
        connection.ping()
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"Redis at {describe(connection)} cannot be reached: {exc}") from None


def describe(connection: redis.Redis) -> str:
    """host:port/db of a connection, without any password."""
    kwargs = connection.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def queue(name: str, connection: redis.Redis) -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer)
