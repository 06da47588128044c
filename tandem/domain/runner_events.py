"""Outgoing webhooks to the team's model runner, on GitHub's model.

When a round starts awaiting outputs, a round closes or a task closes, the change's transaction
also writes an outbox row (models.OutboxEntry) for one delivery: a POST of the event's JSON to
TANDEM_RUNNER_URL with

    X-Tandem-Event: round.awaiting_outputs
    X-Tandem-Delivery: <a GUID, the same on every retry and redelivery>
    X-Tandem-Signature-256: sha256=<HMAC-SHA256 of the raw body with TANDEM_RUNNER_SECRET>

The row is queued right after the commit (or by the periodic sweep, after a crash); the job
(workers.runner_events) retries a failed POST with Tandem's retry policy and waits out outages of
Redis or the database. A delivery that failed every try stays in RQ's failed registry, where
`tandem runner-events failed` lists it and `tandem runner-events redeliver` sends it again.

The body says what changed and where (task, repository, round), never which model is A: a runner
reads the rest through the pull protocol (GET /api/rounds), with its team's token.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import uuid

import orjson
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from tandem.infra import job_names, outbox, queue
from tandem.infra.errors import NotFound
from tandem.infra.models import OutboxEntry
from tandem.infra.services import Services
from tandem.infra.services import current as current_services

SIGNATURE_HEADER = "X-Tandem-Signature-256"
EVENT_HEADER = "X-Tandem-Event"
DELIVERY_HEADER = "X-Tandem-Delivery"
PREFIX = "sha256="
_PENDING = "tandem.domain.runner_events.pending"  # session.info key: outbox rows to queue after the commit


class RunnerEvent(enum.StrEnum):
    ROUND_AWAITING_OUTPUTS = "round.awaiting_outputs"
    ROUND_CLOSED = "round.closed"
    TASK_CLOSED = "task.closed"


ROUND_AWAITING_OUTPUTS = RunnerEvent.ROUND_AWAITING_OUTPUTS
ROUND_CLOSED = RunnerEvent.ROUND_CLOSED
TASK_CLOSED = RunnerEvent.TASK_CLOSED


def signature(secret: bytes, body: bytes) -> str:
    return PREFIX + hmac.digest(secret, body, hashlib.sha256).hex()


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether the header signs this body (constant time; False for a missing header)."""
    if not header:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.encode())


def emit(session: Session, event: str, payload: dict) -> None:
    """In the transaction that makes the change: record one delivery of the event to the runner
    (nothing when no runner URL is configured). It is queued once the transaction commits."""
    settings = current_services().settings
    if not settings.runner_url:
        return
    delivery = str(uuid.uuid4())
    body = orjson.dumps({"event": str(RunnerEvent(event)), "delivery": delivery, **payload}).decode()
    kwargs = job_names.payload(job_names.DELIVER_RUNNER_EVENT, delivery=delivery, event=str(event), body=body)
    row = OutboxEntry(queue=queue.DEFAULT, func=job_names.DELIVER_RUNNER_EVENT, args=[], kwargs=kwargs)
    session.add(row)
    pending = session.info.setdefault(_PENDING, [])
    if not pending:
        sqlalchemy_event.listen(session, "after_commit", _queue_after_commit, once=True)
    pending.append(row)


def _queue_after_commit(session: Session) -> None:
    # The rows' ids were assigned at the flush; a failure here leaves them to the periodic sweep.
    ids = [row.id for row in session.info.pop(_PENDING, [])]
    with contextlib.suppress(Exception):  # the sweep queues them; the change itself is committed
        outbox.dispatch(current_services(), ids)


def _failed(services: Services) -> list[Job]:
    default = services.queue(queue.DEFAULT)
    registry = FailedJobRegistry(queue=default)
    jobs = Job.fetch_many(registry.get_job_ids(), connection=services.redis, serializer=default.serializer)
    return [job for job in jobs if job is not None and job.func_name == job_names.DELIVER_RUNNER_EVENT]


def failed_deliveries(services: Services) -> list[dict]:
    """The deliveries that failed every try: delivery id, event, when, and why (the last line)."""
    return [
        {
            "delivery": job.kwargs["delivery"],
            "event": job.kwargs["event"],
            "failed_at": job.ended_at,
            "reason": _last_error(job),
        }
        for job in _failed(services)
    ]


def _last_error(job: Job) -> str:
    result = job.latest_result()
    lines = (result.exc_string or "").strip().splitlines() if result is not None else []
    return lines[-1] if lines else "no error recorded"


def redeliver(services: Services, delivery_ids: list[str] | None) -> list[str]:
    """Send these failed deliveries again (every failed one for None), with their delivery ids;
    returns the ids queued. NotFound names an id that is not among the failed deliveries."""
    jobs = {job.kwargs["delivery"]: job for job in _failed(services)}
    wanted = list(jobs) if delivery_ids is None else delivery_ids
    unknown = [delivery for delivery in wanted if delivery not in jobs]
    if unknown:
        raise NotFound(f"no failed runner delivery {unknown[0]}; `tandem runner-events failed` lists them")
    for delivery in wanted:
        job = jobs[delivery]
        job.delete()
        services.enqueue(queue.DEFAULT, job_names.DELIVER_RUNNER_EVENT, kwargs=job.kwargs)
    return wanted
