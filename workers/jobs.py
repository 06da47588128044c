"""What every Tandem job does when GitHub says "wait": it is queued again for when the wait is
over, without spending one of its retries (those are for failures, not for waiting)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta

from rq import get_current_job

from tandem import services
from tandem.errors import RateLimited

log = logging.getLogger(__name__)


def waits_out_rate_limits(queue_name: str) -> Callable:
    def decorator(job: Callable) -> Callable:
        @functools.wraps(job)
        def wrapper(*args):
            try:
                return job(*args)
            except RateLimited as exc:
                current = services.current()
                delay = timedelta(seconds=max(exc.seconds, 1.0))
                current.queue(queue_name).enqueue_in(delay, wrapper, *args)
                log.info("%s%r rescheduled in %.0f s: %s", job.__name__, args, delay.total_seconds(), exc)
                return f"rescheduled: {exc}"

        return wrapper

    return decorator


def is_last_try() -> bool:
    """True when a failure now is final: no RQ retry is left (or we run outside RQ)."""
    job = get_current_job()
    return job is None or not job.retries_left
