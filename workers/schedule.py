"""Periodic work inside `tandem worker`. A job run by the RQ scheduler every period: recovering
webhooks GitHub failed to deliver, delivery jobs that failed without being processed, and rounds
whose outputs did not come in time (their `followups.round_timeout`: checked every period, so a
round expires at most one period late). A sweep each worker runs every SWEEP_EVERY, one worker at
a time: tasks whose opening job was lost, and outbox entries a crash left behind.

A periodic job runs at the start of each period (every REDELIVERY_EVERY, on the clock) and
schedules its own next run. Each run has a job id made from its period, and is scheduled with
RQ's atomic `unique` scheduling, so however many workers start (each calls install()) and
whenever they do, there is never more than one run per period, and a chain broken by a lost job
is mended by the next worker start.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from rq import get_current_job
from rq.exceptions import DuplicateJobError

from tandem.domain import tasks
from tandem.infra import job_names, outbox, queue, redelivery, redis_keys, services
from tandem.infra.services import Services
from workers import deliveries, rounds
from workers.jobs import checks_payload

log = logging.getLogger(__name__)

REDELIVERY_EVERY = timedelta(minutes=10)
# Look back a little further than the period, so a delivery failing just before a run is caught.
REDELIVERY_WINDOW = timedelta(minutes=30)
REDELIVERY_JOB = "tandem-redelivery-{period}"
SWEEP_EVERY = timedelta(seconds=30)
# A task queued or opening this long without a change, and with no opening job queued, scheduled
# or running, has lost its job (a worker killed on its last try, Redis lost): its opening is
# queued again.
STUCK_AFTER = timedelta(minutes=1)
# An outbox entry is queued right after its delivery commits; one still waiting this long was
# left behind by a crash or a Redis outage.
OUTBOX_LEFT_AFTER = timedelta(minutes=2)


def install(current: Services) -> None:
    if current.settings.has_credentials:
        _schedule_redelivery(current)


def _schedule_redelivery(current: Services, after: int | None = None) -> str | None:
    """Schedule the run at the start of the next period (or of the period after `after`, if
    later), unless it is scheduled already. Returns the new job's id."""
    every = int(REDELIVERY_EVERY.total_seconds())
    period = max(int(time.time() // every), after or 0) + 1
    job_id = REDELIVERY_JOB.format(period=period)
    try:
        current.queue(queue.DEFAULT).enqueue_at(
            datetime.fromtimestamp(period * every, UTC),
            job_names.REDELIVER_MISSED_WEBHOOKS,
            kwargs=job_names.payload(job_names.REDELIVER_MISSED_WEBHOOKS),
            job_id=job_id,
            unique=True,
            result_ttl=2 * every,
            failure_ttl=24 * 3600,
        )
    except DuplicateJobError:
        return None
    return job_id


def _own_period() -> int | None:
    job = get_current_job()
    prefix = REDELIVERY_JOB.format(period="")
    if job is None or not job.id.startswith(prefix) or not job.id[len(prefix) :].isdigit():
        return None
    return int(job.id[len(prefix) :])


@checks_payload(queue.DEFAULT)
def redeliver_missed_webhooks() -> list[str]:
    current = services.current()
    # Next run first: whatever happens to this one, the chain goes on (after this run's period,
    # even if this run was started early by hand).
    _schedule_redelivery(current, after=_own_period())
    swept = deliveries.requeue_failed(current)  # first: it needs no GitHub, which may fail the run
    report = redelivery.redeliver_failed(current, REDELIVERY_WINDOW, log=log.warning)
    lines = report.lines() + rounds.expire_rounds(current) + swept
    for line in lines:
        log.info(line)
    return lines


def sweep_left_behind(current: Services) -> list[str]:
    """Queue again what a crash or a Redis outage left behind. Every worker calls it every
    SWEEP_EVERY; the lock lets one of them through per period."""
    if not current.redis.set(redis_keys.SWEEP_LOCK, 1, nx=True, ex=int(SWEEP_EVERY.total_seconds()) - 1):
        return []
    lines = [f"requeued stuck task {task_id}" for task_id in tasks.requeue_stuck(current, STUCK_AFTER)]
    if left := outbox.sweep(current, OUTBOX_LEFT_AFTER):
        lines.append(f"queued {left} outbox job(s) a crash had left behind")
    for line in lines:
        log.warning(line)
    return lines
