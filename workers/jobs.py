"""What every Tandem job does when GitHub says "wait": it is queued again for when the wait is
over, without spending one of its retries (those are for failures, not for waiting)."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from datetime import timedelta

from rq import Retry, get_current_job

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
                delay = reschedule(queue_name, wrapper, args, exc.seconds)
                # (Not the arguments: for a delivery they are the whole webhook body.)
                log.info("%s rescheduled in %.0f s: %s", job.__name__, delay.total_seconds(), exc)
                return f"rescheduled: {exc}"

        return wrapper

    return decorator


def reschedule(queue_name: str, func: Callable, args: tuple, seconds: float) -> timedelta:
    """Queue func(*args) again in `seconds`, keeping the retries the current job has left."""
    current = services.current()
    delay = timedelta(seconds=max(seconds, 1.0))
    job = get_current_job()
    options: dict = {}
    if job is None:  # run outside RQ: the new job gets Tandem's whole retry policy
        options["retry"] = current.retry()
    else:
        if job.retries_left:
            options["retry"] = Retry(max=job.retries_left, interval=job.retry_intervals or 0)
        options["description"] = job.description
        if job.failure_ttl is not None:
            options["failure_ttl"] = job.failure_ttl
    current.queue(queue_name).enqueue_in(delay, func, *args, **options)
    return delay


def is_last_try() -> bool:
    """True when a failure now is final: no RQ retry is left (or we run outside RQ).

    A rate limit is never final: the job is queued again for when the wait is over (called
    from an `except` block, this looks at the exception being handled)."""
    if isinstance(sys.exc_info()[1], RateLimited):
        return False
    job = get_current_job()
    return job is None or not job.retries_left
