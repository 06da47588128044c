"""Telling an outage of Redis or the database from a failure.

A job that meets an outage has done nothing wrong: it waits for the service and tries again,
for as long as the outage lasts, without spending one of its retries (those are for failures).
"Unavailable" is meant precisely, so that a real bug is never mistaken for an outage and waited
on forever:

- Redis: redis-py's ConnectionError (refused, reset, Redis still loading its data) and
  TimeoutError;
- the database: an error that invalidated the connection (the server went away mid-conversation),
  or one raised while connecting (refused, reset, "starting up", too many connections), and the
  pool timing out while waiting for a connection. Any other OperationalError (a lock timeout, a
  cancelled query) is a failure like any other.

The whole chain of causes is examined, so an outage re-raised as another error still counts.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import redis
from sqlalchemy import exc as sa

from tandem.infra.settings import Settings


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _unavailable(error: BaseException) -> bool:
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return True
    if isinstance(error, sa.TimeoutError):  # no pooled connection came back in time
        return True
    if isinstance(error, sa.DBAPIError):
        connecting = error.statement is None and isinstance(error, sa.OperationalError | sa.InterfaceError)
        return error.connection_invalidated or connecting
    return False


def is_unavailable(error: BaseException) -> bool:
    """True when error (or one of its causes) says Redis or the database cannot be reached."""
    return any(_unavailable(e) for e in _chain(error))


def is_redis_down(error: BaseException) -> bool:
    return any(isinstance(e, redis.ConnectionError | redis.TimeoutError) for e in _chain(error))


def wait_seconds(settings: Settings, waits_so_far: int) -> float:
    """How long to wait before the next try: doubling from the first wait up to the cap, with a
    little jitter so that the jobs of one outage do not all come back at the same instant."""
    base = settings.outage_wait_seconds * 2 ** min(waits_so_far, 32)
    return min(base, settings.outage_max_wait_seconds) * random.uniform(0.8, 1.0)
