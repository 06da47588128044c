"""Whether a `tandem worker` is alive, read by /readyz and `tandem doctor`.

The heartbeat is RQ's own: each worker's hash in RQ's worker registry, whose `last_heartbeat`
a Tandem worker renews every HEARTBEAT_EVERY seconds from a thread of its own, so a worker busy
with a long job still beats. (RQ's own tools, `rq info` and dashboards, show the same workers.)
No beat for HEARTBEAT_TTL seconds means the worker is dead, and its running job is queued
again (workers/worker.py); RQ itself lets the worker's key linger for minutes, so liveness is
read from the time of the last beat, not from the key's existence. The same beats renew the
leases (Redis locks) a job holds, so that a dead worker's lock lapses as fast as its job.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from redis.exceptions import LockError
from rq import SimpleWorker

HEARTBEAT_EVERY = 5
HEARTBEAT_TTL = 20  # four missed beats


@dataclass(frozen=True)
class WorkerBeat:
    name: str
    hostname: str | None
    pid: int | None
    seconds_ago: float

    @property
    def alive(self) -> bool:
        return self.seconds_ago <= HEARTBEAT_TTL


def worker_beats(connection: redis.Redis) -> list[WorkerBeat]:
    """Every worker in RQ's registry (a worker leaves it when it stops), latest beat first."""
    now = datetime.now(UTC)
    beats = [
        WorkerBeat(worker.name, worker.hostname, worker.pid, (now - worker.last_heartbeat).total_seconds())
        for worker in SimpleWorker.all(connection=connection)
        if worker.last_heartbeat is not None
    ]
    return sorted(beats, key=lambda beat: beat.seconds_ago)


def alive_on(connection: redis.Redis, hostname: str) -> bool:
    """Has a worker on this host beaten lately? (A container's healthcheck: its own worker, not any.)"""
    return any(beat.alive and beat.hostname == hostname for beat in worker_beats(connection))


def summary(connection: redis.Redis) -> dict:
    """What /readyz shows: how many workers beat, and how long ago the latest beat was."""
    beats = worker_beats(connection)
    return {
        "alive": sum(beat.alive for beat in beats),
        "last_heartbeat_seconds_ago": round(beats[0].seconds_ago, 1) if beats else None,
    }


_leases: set = set()
_leases_guard = threading.Lock()


@contextlib.contextmanager
def lease(connection: redis.Redis, name: str, *, blocking_timeout: float) -> Iterator[None]:
    """A Redis lock that outlives a dead holder by HEARTBEAT_TTL at most, however long a live
    holder keeps it: a worker's heartbeat thread renews the leases its process holds."""
    # (Not thread-local: the heartbeat thread renews it.)
    lock = connection.lock(name, timeout=HEARTBEAT_TTL, blocking_timeout=blocking_timeout, thread_local=False)
    with lock:
        with _leases_guard:
            _leases.add(lock)
        try:
            yield
        finally:
            with _leases_guard:
                _leases.discard(lock)


def renew_leases() -> None:
    with _leases_guard:
        held = list(_leases)
    for lock in held:
        with contextlib.suppress(LockError):  # released meanwhile
            lock.reacquire()
