"""Dead letters: deliveries answered 202 that could not be processed, parked with their body and
the reason (models.DeadLetter) until someone replays them (`tandem deliveries retry`).

They live in the database rather than in RQ's failed registry: they must outlive any TTL and a
Redis that lost its data, they are listed and counted with a query, and the row goes in the same
transaction that records the delivery as processed, so a replayed delivery leaves the list
exactly when its effects are committed.

A job whose arguments this release cannot read (queued by another release: workers.jobs) is
parked here too, as a letter of event JOB: its body says the queue, function and arguments, and
a replay queues it as it was.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tandem.infra.db import utcnow
from tandem.infra.inbox import IncomingDelivery
from tandem.infra.models import DeadLetter, DeadLetterKind
from tandem.infra.services import Services

MAX_REASON = 1000
JOB = "job"  # the event of a parked job


def park(services: Services, delivery: IncomingDelivery, kind: DeadLetterKind, reason: str) -> None:
    """Record the delivery as dead (again, if a replay failed too), with why."""
    with services.storage.transaction() as session:
        letter = session.get(DeadLetter, delivery.id) or DeadLetter(delivery_id=delivery.id)
        letter.event, letter.action, letter.body = delivery.event, delivery.action, delivery.body
        letter.kind, letter.reason = kind, reason[:MAX_REASON]
        letter.parked_at, letter.retried_at = utcnow(), None
        session.add(letter)


def park_job(
    services: Services, job_id: str, queue_name: str, func: str, args: list, kwargs: dict[str, Any], reason: str
) -> None:
    """Record a job that cannot run as queued, with why; a replay queues it again as it was."""
    body = json.dumps({"queue": queue_name, "func": func, "args": list(args), "kwargs": kwargs})
    park(services, IncomingDelivery(job_id, JOB, func[-64:], body), DeadLetterKind.UNPROCESSABLE, reason)


def forget(session: Session, delivery_id: str) -> None:
    """In the transaction that records the delivery as processed: it is dead no more."""
    session.execute(delete(DeadLetter).where(DeadLetter.delivery_id == delivery_id))


def listing(services: Services) -> list[DeadLetter]:
    with services.storage.transaction() as session:
        return list(session.scalars(select(DeadLetter).order_by(DeadLetter.parked_at, DeadLetter.delivery_id)))


def count(services: Services) -> dict[DeadLetterKind, int]:
    with services.storage.transaction() as session:
        rows = session.execute(
            select(DeadLetter.kind, func.count()).where(DeadLetter.retried_at.is_(None)).group_by(DeadLetter.kind)
        )
        return {kind: number for kind, number in rows}


def to_replay(services: Services, delivery_ids: Sequence[str] | None) -> list[IncomingDelivery]:
    """The parked deliveries with these ids (all of them for None)."""
    query = select(DeadLetter).order_by(DeadLetter.parked_at, DeadLetter.delivery_id)
    if delivery_ids is not None:
        query = query.where(DeadLetter.delivery_id.in_(delivery_ids))
    with services.storage.transaction() as session:
        return [IncomingDelivery(r.delivery_id, r.event, r.action, r.body) for r in session.scalars(query)]


def mark_replayed(services: Services, delivery_ids: Sequence[str]) -> None:
    with services.storage.transaction() as session:
        session.execute(update(DeadLetter).where(DeadLetter.delivery_id.in_(delivery_ids)).values(retried_at=utcnow()))
