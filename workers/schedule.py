"""Periodic jobs, run by the RQ scheduler inside `tandem worker`.

A periodic job schedules its own next run; a Redis key taken with SET NX makes sure that
however many workers start, only one next run is ever scheduled.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from tandem import queue, redelivery, services
from tandem.services import Services

log = logging.getLogger(__name__)

REDELIVERY_EVERY = timedelta(minutes=10)
# Look back a little further than the period, so a delivery failing just before a run is caught.
REDELIVERY_WINDOW = timedelta(minutes=30)
_NEXT_REDELIVERY = "tandem:schedule:redelivery"


def install(current: Services) -> None:
    if current.settings.has_credentials:
        _schedule_redelivery(current)


def _schedule_redelivery(current: Services) -> None:
    if current.redis.set(_NEXT_REDELIVERY, 1, nx=True, ex=int(REDELIVERY_EVERY.total_seconds()) + 120):
        current.queue(queue.DEFAULT).enqueue_in(REDELIVERY_EVERY, redeliver_missed_webhooks)


def redeliver_missed_webhooks() -> list[str]:
    current = services.current()
    current.redis.delete(_NEXT_REDELIVERY)
    try:
        report = redelivery.redeliver_failed(current, REDELIVERY_WINDOW, log=log.warning)
    finally:
        _schedule_redelivery(current)
    for line in report.lines():
        log.info(line)
    return report.lines()
