"""Queueing the follow-up jobs a committed delivery recorded (models.FollowUp), exactly once.

Right after the commit the delivery dispatches its own; the periodic sweep dispatches any a
crash or a Redis outage left behind. A dispatched row is deleted; a job already queued for a
row (a dispatch that died before deleting it) is not queued twice.
"""

from __future__ import annotations

from datetime import timedelta

from rq.job import Job
from sqlalchemy import delete, select

from tandem.db import utcnow
from tandem.models import FollowUp
from tandem.services import Services


def job_path(func) -> str:
    return func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"


def dispatch(services: Services, ids: list[int]) -> int:
    """Queue the follow-ups with these ids (those still waiting); returns how many were queued."""
    if not ids:
        return 0
    with services.storage.transaction() as session:
        rows = [(r.id, r.job_id, r.queue, r.func, list(r.args), r.kwargs, r.coalesce_key)
                for r in session.scalars(select(FollowUp).where(FollowUp.id.in_(ids)).order_by(FollowUp.id))]
    queued, done = 0, []
    try:
        for row_id, job_id, queue_name, func, args, kwargs, coalesce_key in rows:
            if Job.exists(job_id, connection=services.redis):
                pass
            elif coalesce_key is None or services.redis.set(coalesce_key, 1, nx=True, ex=3600):
                services.enqueue(queue_name, func, *args, kwargs=kwargs, job_id=job_id)
                queued += 1
            done.append(row_id)
    finally:  # those queued are done, even if a later one failed
        if done:
            with services.storage.transaction() as session:
                session.execute(delete(FollowUp).where(FollowUp.id.in_(done)))
    return queued


def sweep(services: Services, older_than: timedelta) -> int:
    """Dispatch follow-ups left waiting longer than older_than."""
    with services.storage.transaction() as session:
        ids = list(session.scalars(select(FollowUp.id).where(FollowUp.created_at < utcnow() - older_than)))
    return dispatch(services, ids)
