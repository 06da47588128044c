"""Webhook deliveries: accepted into the inbox at intake, relayed into jobs whose id is the GUID,
and processed here exactly once.

Exactly once: the processed GUID is written in the same transaction as the delivery's effects,
so a delivery whose processing failed stays processable when GitHub redelivers it, and a
redelivery of a processed one changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from rq import Queue
from sqlalchemy.exc import IntegrityError

from tandem import inbox, outbox, queue, services
from tandem.inbox import IncomingDelivery
from tandem.models import ProcessedDelivery
from workers import comments, installations, pull_requests, repositories, teams
from workers.jobs import waits_out_rate_limits
from workers.router import Delivery, Router

log = logging.getLogger(__name__)

ROUTER = Router(installations.router, repositories.router, pull_requests.router, comments.router, teams.router)


def handles(event: str, action: str | None) -> bool:
    return ROUTER.handles(event, action)


def accept_deliveries(current: services.Services, incoming: Sequence[IncomingDelivery]) -> list[bool]:
    """Put verified deliveries in the inbox (see tandem.inbox); False for a GUID already waiting."""
    return inbox.accept(current.redis, incoming)


def accept_delivery(
    current: services.Services, delivery_id: str, event: str, action: str | None, payload: dict[str, Any]
) -> bool:
    """Put one delivery (a webhook body given as a dict) in the inbox."""
    return accept_deliveries(current, [IncomingDelivery(delivery_id, event, action, json.dumps(payload))])[0]


def _job(current: services.Services, delivery: IncomingDelivery):
    return Queue.prepare_data(
        process_delivery,
        args=(delivery.id, delivery.event, delivery.action, delivery.body),
        job_id=f"delivery-{delivery.id}",
        retry=current.retry(),
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"{delivery.event}.{delivery.action} {delivery.id}" if delivery.action else f"{delivery.event} {delivery.id}",
    )


def relay_inbox(current: services.Services, consumer: str, block_ms: int | None = None, **options) -> int:
    """Turn one batch of inbox entries into jobs on the webhooks queue."""
    return inbox.relay(
        current.redis, current.queue(queue.WEBHOOKS), lambda delivery: _job(current, delivery), consumer, block_ms,
        **options,
    )


@waits_out_rate_limits(queue.WEBHOOKS)
def process_delivery(delivery_id: str, event: str, action: str | None, body: str) -> str:
    """Run the delivery's handlers and record it as processed, in one transaction."""
    current = services.current()
    payload = json.loads(body)
    # From here on a redelivery may be queued again; the database decides what is new.
    current.redis.delete(inbox.pending_key(delivery_id))
    handlers = ROUTER.handlers_for(event, action)
    if _already_processed(current, delivery_id):  # a redelivery: nothing to do
        return "duplicate"
    try:
        with current.storage.transaction() as session:
            delivery = Delivery(delivery_id, event, action, payload, session, current)
            for handler in handlers:
                handler(delivery)
            # Claimed last, so the (SQLite) write lock is not held while handlers ask GitHub
            # things; a concurrent run of the same delivery fails here and rolls back.
            session.add(ProcessedDelivery(delivery_id=delivery_id, event=event, action=action))
            session.flush()
    except IntegrityError:
        if _already_processed(current, delivery_id):
            log.info("delivery %s was already processed", delivery_id)
            return "duplicate"
        raise
    outbox.dispatch(current, [follow_up.id for follow_up in delivery.follow_ups])
    return f"processed by {len(handlers)} handler(s)"


def _already_processed(current: services.Services, delivery_id: str) -> bool:
    with current.storage.transaction() as session:
        return session.get(ProcessedDelivery, delivery_id) is not None
