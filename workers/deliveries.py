"""Webhook deliveries: queued at intake with the GUID as job id, processed here exactly once.

Exactly once: the processed GUID is written in the same transaction as the delivery's effects,
so a delivery whose processing failed stays processable when GitHub redelivers it, and a
redelivery of a processed one changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import IntegrityError

from tandem import queue, services
from tandem.models import ProcessedDelivery
from workers import comments, installations, repositories
from workers.router import Delivery, Router

log = logging.getLogger(__name__)

ROUTER = Router(installations.router, repositories.router, comments.router)

# How long a queued-but-unstarted delivery keeps its duplicates out of the queue.
PENDING_TTL = 6 * 3600


def _pending_key(delivery_id: str) -> str:
    return f"tandem:delivery:{delivery_id}:pending"


def handles(event: str, action: str | None) -> bool:
    return ROUTER.handles(event, action)


def enqueue_delivery(
    current: services.Services, delivery_id: str, event: str, action: str | None, payload: dict[str, Any]
) -> bool:
    """Queue a delivery durably; False if the same GUID is already waiting in the queue.

    Raises redis.RedisError when Redis cannot take it: the caller must not acknowledge it then.
    """
    if not current.redis.set(_pending_key(delivery_id), 1, nx=True, ex=PENDING_TTL):
        return False
    try:
        current.enqueue(
            queue.WEBHOOKS,
            process_delivery,
            delivery_id,
            event,
            action,
            payload,
            job_id=f"delivery-{delivery_id}",
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
            description=f"{event}.{action} {delivery_id}" if action else f"{event} {delivery_id}",
        )
    except BaseException:
        current.redis.delete(_pending_key(delivery_id))
        raise
    return True


def process_delivery(delivery_id: str, event: str, action: str | None, payload: dict[str, Any]) -> str:
    """Run the delivery's handlers and record it as processed, in one transaction."""
    current = services.current()
    # From here on a redelivery may be queued again; the database decides what is new.
    current.redis.delete(_pending_key(delivery_id))
    handlers = ROUTER.handlers_for(event, action)
    try:
        with current.storage.transaction() as session:
            # Claim the GUID first: a concurrent run of the same delivery waits here, then fails.
            session.add(ProcessedDelivery(delivery_id=delivery_id, event=event, action=action))
            session.flush()
            delivery = Delivery(delivery_id, event, action, payload, session, current)
            for handler in handlers:
                handler(delivery)
    except IntegrityError:
        if _already_processed(current, delivery_id):
            log.info("delivery %s was already processed", delivery_id)
            return "duplicate"
        raise
    for queue_name, func, args in delivery.after_commit:
        current.enqueue(queue_name, func, *args)
    return f"processed by {len(handlers)} handler(s)"


def _already_processed(current: services.Services, delivery_id: str) -> bool:
    with current.storage.transaction() as session:
        return session.get(ProcessedDelivery, delivery_id) is not None
