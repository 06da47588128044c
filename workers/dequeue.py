"""Taking a job off its queue so that no failure of Redis or of the connection loses it.

RQ pops a job id with BLPOP when a worker serves several queues, as `tandem worker` does. When
the connection fails after Redis popped the id and before its reply arrived (a Redis restart
under load does it), the id is in no list any more: the job stays `queued` and nothing ever
runs it. Here the id is moved, atomically, into its queue's intermediate list (RQ's own, which
it uses for one-queue workers); the worker removes it there when the job starts, and the
maintenance queues again, at the front, an id that stays there with its job still queued.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import redis
from rq import Queue
from rq.exceptions import DequeueTimeout
from rq.job import Job, JobStatus
from rq.serializers import Serializer
from rq.timeouts import BaseDeathPenalty
from rq.utils import as_text

from tandem.infra import redis_keys

T = TypeVar("T")

# BLMOVE blocks on one list only: an idle worker blocks on its first queue this long at a time,
# then looks at every queue again. The others wait at most this long when the worker is idle.
IDLE_POLL = 0.2
# An id that stays in an intermediate list this long, its job neither started nor gone, was
# moved by a dequeue whose reply was lost. A live dequeue starts its job within milliseconds.
STRANDED_AFTER = 10


class TandemQueue(Queue):
    @classmethod
    def dequeue_any(
        cls,
        queues: Iterable[Queue],
        timeout: int | None,
        connection: redis.Redis,
        job_class: type[Job] | None = None,
        serializer: Serializer | str | None = None,
        death_penalty_class: type[BaseDeathPenalty] | None = None,
    ) -> tuple[Job, Queue] | None:
        queues = list(queues)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for rq_queue in queues:
                if (moved := connection.lmove(rq_queue.key, rq_queue.intermediate_queue_key)) is not None:
                    break
            else:
                if deadline is None:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DequeueTimeout(timeout, [rq_queue.key for rq_queue in queues])
                rq_queue = queues[0]
                # (redis-py types BLMOVE's timeout as whole seconds; Redis takes fractions since 6.0)
                moved = connection.execute_command(
                    "BLMOVE", rq_queue.key, rq_queue.intermediate_queue_key, "LEFT", "RIGHT", min(IDLE_POLL, left)
                )
                if moved is None:
                    continue
            job_id = as_text(moved)
            result = cls._fetch_dequeued_job(
                connection, rq_queue.key, job_id, job_class, serializer, death_penalty_class
            )
            if result is not None:
                return result
            connection.lrem(rq_queue.intermediate_queue_key, 1, job_id)  # its job is gone

    @classmethod
    def _fetch_dequeued_job(
        cls,
        connection: redis.Redis,
        queue_key: str,
        job_id: str,
        job_class: type[Job] | None = None,
        serializer: Serializer | str | None = None,
        death_penalty_class: type[BaseDeathPenalty] | None = None,
    ) -> tuple[Job, Queue] | None:
        # Moved, not yet read: wait for Redis rather than give up (RQ raised, ending the worker).
        fetch = super()._fetch_dequeued_job
        return when_redis_answers(
            lambda: fetch(connection, queue_key, job_id, job_class, serializer, death_penalty_class)
        )


def when_redis_answers(call: Callable[[], T]) -> T:
    """call(), tried again every second while Redis is away: for a job only this process knows of,
    which giving up would lose."""
    while True:
        try:
            return call()
        except redis.RedisError:
            time.sleep(1)


def put_back(rq_queue: Queue, job_id: str) -> None:
    """Return a dequeued job that did not start to the front of its queue, in one step."""
    with rq_queue.connection.pipeline() as pipe:
        pipe.lrem(rq_queue.intermediate_queue_key, 1, job_id)
        rq_queue.push_job_id(job_id, pipeline=pipe, at_front=True)
        pipe.execute()


def requeue_stranded(rq_queue: Queue, after: float = STRANDED_AFTER) -> list[str]:
    """Queue again the jobs whose ids sat in the intermediate list for `after` seconds, over
    successive calls (the maintenance's, one process at a time). An id that leaves the list
    between two calls is forgotten: a job retried under the same id starts afresh."""
    connection = rq_queue.connection
    present = [as_text(raw) for raw in connection.lrange(rq_queue.intermediate_queue_key, 0, -1)]
    key = redis_keys.stranded_sightings(rq_queue.name)
    seen = {as_text(job_id): float(at) for job_id, at in connection.hgetall(key).items()}
    clock = time.time()
    sightings = {job_id: seen.get(job_id, clock) for job_id in present}
    stranded = [
        job_id
        for job_id in sightings  # seen by an earlier call, long enough ago
        if job_id in seen and clock - seen[job_id] >= after and job_id not in rq_queue.started_job_registry
    ]
    requeued = []
    for job_id in stranded:
        job = rq_queue.fetch_job(job_id)
        if job is not None and job.get_status() == JobStatus.QUEUED:
            put_back(rq_queue, job_id)
            requeued.append(job_id)
        else:  # it ran, or its hash is gone: only the stale id is left
            connection.lrem(rq_queue.intermediate_queue_key, 1, job_id)
        del sightings[job_id]
    with connection.pipeline() as pipe:
        pipe.delete(key)
        if sightings:
            pipe.hset(key, items=[field for sighting in sightings.items() for field in sighting])
            pipe.expire(key, 3600)
        pipe.execute()
    return requeued
