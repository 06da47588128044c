"""Webhook deliveries: accepted into the inbox at intake, relayed into jobs whose id is
`delivery-<GUID>`, and processed here exactly once.

Exactly once: the processed GUID is written in the same transaction as the delivery's effects,
so a delivery whose processing failed stays processable when GitHub redelivers it, and a
redelivery of a processed one changes nothing.

Nothing answered 202 is lost: an outage of Redis or the database makes the job wait (workers.jobs);
a payload that cannot be processed is parked at once, and one that fails on every try is parked
after its last, both with the reason (tandem.infra.dead_letters); and the periodic sweep queues again
a delivery job that failed some other way (a worker killed, a timeout) and was never processed.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DataError, IntegrityError

from tandem.domain import webhook_events
from tandem.domain.webhook_payloads import Event, parse
from tandem.infra import dead_letters, job_names, logs, metrics, outages, outbox, queue, redis_keys, services
from tandem.infra.errors import Unprocessable
from tandem.infra.inbox import IncomingDelivery
from tandem.infra.models import DeadLetter, DeadLetterKind, OutboxEntry, ProcessedDelivery
from workers import ci, comments, installations, pull_requests, repositories, teams
from workers.jobs import is_last_try, runs_on
from workers.router import Delivery, Router

log = logging.getLogger(__name__)

ROUTER = Router(
    installations.router, repositories.router, pull_requests.router, comments.router, teams.router, ci.router
)
ROUTER.check_covers(webhook_events.event_actions())

# A failed delivery job the sweep has queued again this many times is parked instead.
MAX_SWEEPS = 3
SWEEPS = "sweeps"  # in the job's meta


@runs_on(queue.WEBHOOKS)
def process_delivery(*, delivery_id: str, event: str, action: str | None, body: str) -> str:
    """Run the delivery's handlers and record it as processed, in one transaction."""
    current = services.current()
    # From here on a redelivery may be queued again; the database decides what is new.
    current.redis.delete(redis_keys.delivery_pending(delivery_id))
    if _already_processed(current, delivery_id):  # a redelivery: nothing to do
        return _ended(event, "duplicate")
    incoming = IncomingDelivery(delivery_id, event, action, body)
    try:
        handled = _handle(current, incoming, parse(event, body))
    except Unprocessable as exc:
        return _park(current, incoming, DeadLetterKind.UNPROCESSABLE, str(exc))
    except DataError as exc:  # a value out of the column's range: it would be, every time
        return _park(
            current, incoming, DeadLetterKind.UNPROCESSABLE, f"the database refused a value: {_first_line(exc.orig)}"
        )
    except Exception as exc:
        if not is_last_try():
            raise
        reason = f"{type(exc).__name__}: {_first_line(exc)}"
        return _park(current, incoming, DeadLetterKind.FAILED, reason, error=exc)
    if handled is None:
        return _ended(event, "duplicate")
    count, entries = handled
    try:
        outbox.dispatch_entries(current, entries)
    except Exception as exc:  # they are recorded: the periodic sweep queues them once Redis is back
        if not outages.is_unavailable(exc):
            raise
        log.warning(
            "outbox entries of delivery %s left to the sweep: %s", delivery_id, type(exc).__name__, exc_info=True
        )
    log.info("delivery %s processed by %d handler(s)", delivery_id, count)
    _ended(event, "processed")
    return f"processed by {count} handler(s)"


def _ended(event: str, outcome: str) -> str:
    metrics.DELIVERIES_PROCESSED.labels(event, outcome).inc()
    return outcome


def _handle(
    current: services.Services, incoming: IncomingDelivery, payload: Event
) -> tuple[int, list[OutboxEntry]] | None:
    """Run the handlers; (how many, the outbox entries to dispatch), or None if a concurrent run
    of the same delivery got there first."""
    handlers = ROUTER.handlers_for(incoming.event, incoming.action)
    logs.bind(event=incoming.event, installation_id=payload.installation.id if payload.installation else None)
    # What the handlers need of GitHub first, with no transaction open (workers.router.Resolver).
    resolved = [ROUTER.resolve(handler, current, incoming.action, payload) for handler in handlers]
    try:
        with current.storage.transaction(hold_rows=True) as session:
            delivery = Delivery(incoming.id, incoming.event, incoming.action, payload, session, current)
            for handler, answers in zip(handlers, resolved, strict=True):
                delivery.resolved = answers
                handler(delivery)
            dead_letters.forget(session, incoming.id)
            # Claimed last, so the (SQLite) write lock is not held while handlers ask GitHub
            # things; a concurrent run of the same delivery fails here and rolls back.
            session.add(ProcessedDelivery(delivery_id=incoming.id, event=incoming.event, action=incoming.action))
            session.flush()
    except IntegrityError:
        if _already_processed(current, incoming.id):
            log.info("delivery %s was already processed", incoming.id)
            return None
        raise
    return len(handlers), delivery.outbox_entries


def _park(
    current: services.Services,
    incoming: IncomingDelivery,
    kind: DeadLetterKind,
    reason: str,
    error: BaseException | None = None,
) -> str:
    dead_letters.park(current, incoming, kind, reason)
    log.error("delivery %s (%s) parked as %s: %s", incoming.id, incoming.event, kind.value, reason, exc_info=error)
    _ended(incoming.event, kind.value)
    return f"{kind.value}: {reason}"


def _first_line(error: BaseException | None) -> str:
    return (str(error).strip().splitlines() or [""])[0] if error is not None else ""


def _already_processed(current: services.Services, delivery_id: str) -> bool:
    with current.storage.transaction() as session:
        return session.get(ProcessedDelivery, delivery_id) is not None


def _settled(current: services.Services, delivery_id: str) -> bool:
    """Processed, or parked and not being replayed: no job of it needs to run."""
    with current.storage.transaction() as session:
        if session.get(ProcessedDelivery, delivery_id) is not None:
            return True
        letter = session.get(DeadLetter, delivery_id)
        return letter is not None and letter.retried_at is None


def _incoming(job) -> IncomingDelivery:
    """The delivery of a delivery job, queued by this release (keywords) or the one before
    (positional: delivery_id, event, action, body)."""
    if job.args:
        return IncomingDelivery(*job.args)
    return IncomingDelivery(job.kwargs["delivery_id"], job.kwargs["event"], job.kwargs["action"], job.kwargs["body"])


def requeue_failed(current: services.Services) -> list[str]:
    """The sweep: queue again each delivery job that failed (a worker killed under it, a timeout,
    its failure not recorded for an outage) and whose delivery was never processed; park one that
    the sweep has queued MAX_SWEEPS times already. Returns a line per delivery, for the log."""
    webhooks = current.queue(queue.WEBHOOKS)
    registry = webhooks.failed_job_registry
    lines = []
    for job_id in registry.get_job_ids():
        job = webhooks.fetch_job(job_id)
        if job is None or job.func_name != job_names.PROCESS_DELIVERY:
            continue
        incoming = _incoming(job)
        if _settled(current, incoming.id):
            registry.remove(job, delete_job=True)
            continue
        sweeps = int(job.meta.get(SWEEPS, 0))
        if sweeps >= MAX_SWEEPS:
            result = job.latest_result()
            error = (result.exc_string or "").strip().splitlines()[-1:] if result is not None else []
            _park(
                current,
                incoming,
                DeadLetterKind.FAILED,
                f"failed {sweeps + 1} times: {''.join(error) or 'no error recorded'}",
            )
            registry.remove(job, delete_job=True)
            lines.append(f"parked delivery {incoming.id}: it kept failing")
            continue
        job.meta[SWEEPS] = sweeps + 1
        retry = current.retry()
        job.retries_left = retry.max if retry else None
        job.save()
        registry.requeue(job)
        lines.append(f"queued failed delivery {incoming.id} again")
    return lines
