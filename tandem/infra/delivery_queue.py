"""Queueing webhook deliveries: into the inbox at intake (tandem.infra.inbox), from the inbox into
delivery jobs, and parked ones again (`tandem deliveries retry`, the dashboard's retry button).

Below the workers: the job function is named (tandem.infra.job_names), not imported, so the web side
queues deliveries without loading any handler.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rq import Queue
from rq.queue import EnqueueData

from tandem.infra import dead_letters, inbox, job_names, queue, services
from tandem.infra.errors import TandemError
from tandem.infra.inbox import IncomingDelivery


def accept_deliveries(current: services.Services, incoming: Sequence[IncomingDelivery]) -> list[bool]:
    """Put verified deliveries in the inbox (see tandem.infra.inbox); False for a GUID already waiting."""
    return inbox.accept(current.redis, incoming)


def accept_delivery(
    current: services.Services, delivery_id: str, event: str, action: str | None, payload: dict[str, Any]
) -> bool:
    """Put one delivery (a webhook body given as a dict) in the inbox."""
    return accept_deliveries(current, [IncomingDelivery(delivery_id, event, action, json.dumps(payload))])[0]


def delivery_job(current: services.Services, delivery: IncomingDelivery):
    return Queue.prepare_data(
        job_names.PROCESS_DELIVERY,
        kwargs=job_names.payload(
            job_names.PROCESS_DELIVERY,
            delivery_id=delivery.id,
            event=delivery.event,
            action=delivery.action,
            body=delivery.body,
        ),
        job_id=f"delivery-{delivery.id}",
        retry=current.retry(),
        # A processed delivery's job is deleted at once: it holds the whole webhook body, and
        # nothing needs it (duplicates are told by the database, and the inbox's pending key).
        result_ttl=0,
        failure_ttl=7 * 24 * 3600,
        description=f"{delivery.event}.{delivery.action} {delivery.id}"
        if delivery.action
        else f"{delivery.event} {delivery.id}",
    )


def relay_inbox(current: services.Services, consumer: str, block_ms: int | None = None, **options) -> int:
    """Turn one batch of inbox entries into jobs on the webhooks queue."""
    return inbox.relay(
        current.redis,
        current.queue(queue.WEBHOOKS),
        lambda delivery: delivery_job(current, delivery),
        consumer,
        block_ms,
        **options,
    )


def _replayed_job(current: services.Services, letter: IncomingDelivery) -> tuple[str, EnqueueData]:
    """(its queue, the job) of a parked delivery, or of a parked job (tandem.infra.dead_letters.JOB)."""
    if letter.event != dead_letters.JOB:
        return queue.WEBHOOKS, delivery_job(current, letter)
    parked = json.loads(letter.body)
    return parked["queue"], Queue.prepare_data(
        parked["func"], args=parked["args"], kwargs=parked["kwargs"], job_id=letter.id, retry=current.retry()
    )


def replay(current: services.Services, delivery_ids: Sequence[str] | None) -> list[str]:
    """Queue the parked deliveries (and jobs) with these ids (all of them for None) again, with
    their whole retry policy; they stay listed, as replayed, until processed or parked again."""
    letters = dead_letters.to_replay(current, delivery_ids)
    if delivery_ids is not None and (unknown := set(delivery_ids) - {letter.id for letter in letters}):
        raise TandemError(f"no parked delivery {', '.join(sorted(unknown))}: see `tandem deliveries failed`")
    if letters:
        jobs = [_replayed_job(current, letter) for letter in letters]
        with current.redis.pipeline() as pipe:
            for name in sorted({name for name, _ in jobs}):
                rq_queue = current.queue(name)
                chosen = [data for job_queue, data in jobs if job_queue == name]
                for data in chosen:  # (an old failed job of the same id must not be swept again)
                    rq_queue.failed_job_registry.remove(data.job_id, pipeline=pipe)
                rq_queue.enqueue_many(chosen, pipeline=pipe)
            pipe.execute()
        dead_letters.mark_replayed(current, [letter.id for letter in letters])
    return [letter.id for letter in letters]
