"""Queueing the jobs a committed delivery recorded in the outbox (models.OutboxEntry), exactly once.

Right after the commit the delivery dispatches its own; the periodic sweep dispatches any a
crash or a Redis outage left behind. A dispatched row is deleted; a job already queued for a
row (a dispatch that died before deleting it) is not queued twice.

Coalesced entries (those with a coalesce_key, such as a pair's sync) are one job per key and
window: each is scheduled for the end of the window it was dispatched in, under an id made of
the key and that window, with RQ's atomic unique scheduling, so every entry of a burst joins
the one job, which starts after all of them committed and so sees all of them. (Or, for the jobs
of AT_ONCE, queued at once and joined until it starts.) Their rows are
the durable "wanted" marker: the job deletes the rows it has seen (``waiting`` before it reads,
``forget`` once it is done), so a job lost or killed before it finished leaves rows that the
sweep dispatches again.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus
from rq.utils import as_text
from sqlalchemy import delete, select

from tandem.infra import job_names, redis_keys
from tandem.infra.db import utcnow
from tandem.infra.models import OutboxEntry
from tandem.infra.services import Services

COALESCED = "coalesced"  # in a coalesced job's meta: its key
# Coalesced jobs that wait for no window: one is queued at once, and the entries committed before
# it starts join it. A command's answer is awaited by the person who wrote it; in a burst, its job
# waits behind the deliveries (a worker serves them first) while answers gather.
AT_ONCE = {job_names.ACKNOWLEDGE_WAITING}

# RQ's job ids are letters, digits, '_' and '-'.
_JOB_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def job_path(func) -> str:
    return func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"


def dispatch(services: Services, ids: list[int]) -> int:
    """Queue the entries with these ids (those still waiting); returns how many were queued."""
    if not ids:
        return 0
    with services.storage.transaction() as session:
        entries = list(session.scalars(select(OutboxEntry).where(OutboxEntry.id.in_(ids)).order_by(OutboxEntry.id)))
    return dispatch_entries(services, entries)


def dispatch_entries(services: Services, entries: list[OutboxEntry]) -> int:
    """Queue these entries, committed and not yet dispatched (a delivery's own, right after its
    commit, need not be read back); returns how many were queued."""
    queued, done, coalesced = 0, [], set()
    try:
        for entry in sorted(entries, key=lambda e: e.id):
            key = entry.coalesce_key
            if key is not None:  # its job deletes the row
                if key not in coalesced:
                    queued += coalesce(services, entry.queue, entry.func, list(entry.args), key, kwargs=entry.kwargs)
                    coalesced.add(key)
                continue
            if not Job.exists(entry.job_id, connection=services.redis):
                services.enqueue(entry.queue, entry.func, *entry.args, kwargs=entry.kwargs, job_id=entry.job_id)
                queued += 1
            done.append(entry.id)
    finally:  # those queued are done, even if a later one failed
        if done:
            with services.storage.transaction() as session:
                session.execute(delete(OutboxEntry).where(OutboxEntry.id.in_(done)))
    return queued


def coalesce(
    services: Services,
    queue_name: str,
    func: Callable | str,
    args: list,
    key: str,
    *,
    kwargs: dict | None = None,
    not_before: float = 0,
) -> bool:
    """Schedule func(*args) for the end of the current window (or of the window `not_before`
    seconds from now falls in), unless that window's job for `key` is scheduled already; a job of
    AT_ONCE (with no `not_before`) is queued at once instead, unless one for `key` has not started.
    Returns whether a job was scheduled. (RQ's scheduler starts it by its own clock: hosts'
    clocks must agree to well within a window.)"""
    if _not_started(services, key):
        return False
    options = {"retry": services.retry(), "result_ttl": 0, "meta": {COALESCED: key}}
    rq_queue, name = services.queue(queue_name), _JOB_ID_UNSAFE.sub("-", key)
    if job_path(func) in AT_ONCE and not not_before:
        job_id = f"{name}-{uuid.uuid4().hex}"
        rq_queue.enqueue(job_path(func), args=args, kwargs=kwargs or {}, job_id=job_id, **options)
        services.redis.set(redis_keys.coalesced_job(key), job_id, ex=3600)
        return True
    window = services.settings.pair_sync_window_seconds
    # Strictly after now: the job must start after the commit that called for it.
    slot = math.floor((time.time() + not_before) / window) + 1
    job_id = f"{name}-{slot}"
    try:
        rq_queue.enqueue_at(
            datetime.fromtimestamp(slot * window, UTC),
            job_path(func),
            args=args,
            kwargs=kwargs or {},
            job_id=job_id,
            unique=True,
            **options,
        )
    except DuplicateJobError:
        return False
    services.redis.set(redis_keys.coalesced_job(key), job_id, ex=math.ceil(slot * window - time.time()) + 3600)
    return True


def _not_started(services: Services, key: str) -> bool:
    """Whether the job last scheduled for ``key`` is still to start (scheduled, queued or deferred).
    (Its status alone is read: every delivery asks, and the whole job is its arguments too.)"""
    job_id = services.redis.get(redis_keys.coalesced_job(key))
    if job_id is None:
        return False
    status = services.redis.hget(Job.key_for(as_text(job_id)), "status")  # (None: the job is gone)
    return status is not None and as_text(status) in (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.DEFERRED)


def waiting(services: Services, key: str) -> list[int]:
    """The entries of `key` committed so far: read them before reading what they call for."""
    with services.storage.transaction() as session:
        return list(session.scalars(select(OutboxEntry.id).where(OutboxEntry.coalesce_key == key)))


def waiting_arguments(services: Services, key: str) -> list[tuple[int, dict]]:
    """`waiting`, with each entry's keyword arguments: for a job that does what each entry asks."""
    with services.storage.transaction() as session:
        rows = session.execute(
            select(OutboxEntry.id, OutboxEntry.kwargs).where(OutboxEntry.coalesce_key == key).order_by(OutboxEntry.id)
        )
        return [(entry_id, kwargs) for entry_id, kwargs in rows]


def forget(services: Services, ids: list[int]) -> None:
    """The coalesced job has done what these entries called for."""
    if ids:
        with services.storage.transaction() as session:
            session.execute(delete(OutboxEntry).where(OutboxEntry.id.in_(ids)))


def sweep(services: Services, older_than: timedelta) -> int:
    """Dispatch entries left waiting longer than older_than."""
    with services.storage.transaction() as session:
        ids = list(session.scalars(select(OutboxEntry.id).where(OutboxEntry.created_at < utcnow() - older_than)))
    return dispatch(services, ids)
