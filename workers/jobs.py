"""What every Tandem job does when told to wait: it is queued again for when the wait is over,
without spending one of its retries (those are for failures, not for waiting). And what every
job shows while it runs: its ids on each log line, its duration and failures in the metrics.

Two things say "wait": GitHub's rate limits (for as long as GitHub says), and an outage of Redis
or the database (tandem.infra.outages: with a capped, doubling wait, for as long as it lasts).

And what every job checks first (`job`): its arguments are keyword-only and of the payload version
this release reads (tandem.infra.job_names); a job that does not fit, queued by another release, is
parked (tandem.infra.dead_letters) with the reason, never run with arguments it would misread.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from rq import Retry, get_current_job

from tandem.infra import dead_letters, job_names, logs, metrics, outages, services
from tandem.infra.errors import RateLimited

log = logging.getLogger(__name__)

# The job arguments that name what it works on, bound to its log lines (tandem.infra.logs).
LOGGED_IDS = ("delivery_id", "task_id", "installation_id", "pair_id")
# How many times in a row the job has waited for an outage (in its meta): the next wait doubles.
OUTAGE_WAITS = "outage_waits"


def runs_on(queue_name: str) -> Callable:
    """A Tandem job on queue_name: its arguments checked (see the module), waiting out rate limits
    and outages."""
    return lambda function: waits_out_rate_limits(queue_name)(checks_payload(queue_name)(function))


def checks_payload(queue_name: str) -> Callable:
    """Park a job whose arguments are not the keyword arguments, of the version, it takes."""

    def decorator(function: Callable) -> Callable:
        name = f"{function.__module__}.{function.__qualname__}"
        version, signature = job_names.VERSIONS[name], inspect.signature(function)

        @functools.wraps(function)
        def checked(*args, **kwargs):
            # Every line a job logs carries its id: the periodic jobs' too, which waits_out_rate_limits
            # (binding it for the others) does not wrap.
            running = get_current_job()
            with logs.bound(job_id=running.id if running else None):
                return _checked(args, kwargs)

        def _checked(args: tuple, kwargs: dict):
            arguments = dict(kwargs)
            queued_version = arguments.pop(job_names.VERSION, None)
            if queued_version is None:
                # Queued by the release before versions: positional, in the order of the parameters
                # (this release kept it). Accepted for this release only.
                names = list(signature.parameters)
                if len(args) > len(names):
                    return _park(
                        queue_name, name, args, kwargs, f"{len(args)} arguments given, {name} takes {len(names)}"
                    )
                arguments.update(zip(names, args, strict=False))
            elif queued_version != version or args:
                return _park(
                    queue_name,
                    name,
                    args,
                    kwargs,
                    (
                        f"payload version {queued_version!r} of {name}: this release reads version {version}"
                        if queued_version != version
                        else f"{name} takes keyword arguments only"
                    ),
                )
            try:
                signature.bind(**arguments)
            except TypeError as exc:
                return _park(queue_name, name, args, kwargs, f"arguments of {name} (version {version}): {exc}")
            return function(**arguments)

        return checked

    return decorator


def _park(queue_name: str, name: str, args: tuple, kwargs: dict, reason: str) -> str:
    job = get_current_job()
    job_id = job.id if job is not None else f"job-{uuid.uuid4().hex}"
    dead_letters.park_job(services.current(), job_id, queue_name, name, list(args), kwargs, reason)
    log.error("job %s (%s) parked: %s", job_id, name, reason)
    return f"parked: {reason}"


def waits_out_rate_limits(queue_name: str) -> Callable:
    def decorator(job: Callable) -> Callable:
        signature = inspect.signature(job)

        @functools.wraps(job)
        def wrapper(*args, **kwargs):
            with logs.bound(**_ids(signature, args, kwargs)), metrics.JOB_SECONDS.labels(job.__name__).time():
                return _run(job, wrapper, queue_name, args, kwargs)

        return wrapper

    return decorator


def _ids(signature: inspect.Signature, args: tuple, kwargs: dict) -> dict:
    """The ids every line the job logs carries: its own, and those among its arguments."""
    running = get_current_job()
    arguments = (
        dict(zip(signature.parameters, args, strict=False)) | kwargs
    )  # (positional: a job queued before versions)
    return {"job_id": running.id if running else None} | {name: arguments.get(name) for name in LOGGED_IDS}


def _run(job: Callable, wrapper: Callable, queue_name: str, args: tuple, kwargs: dict):
    try:
        return job(*args, **kwargs)
    except RateLimited as exc:
        delay = reschedule(queue_name, wrapper, args, exc.seconds, kwargs=kwargs)
        metrics.JOB_RESCHEDULES.labels(job.__name__, "rate_limit").inc()
        # (Not the arguments: for a delivery they are the whole webhook body.)
        log.info("%s rescheduled in %.0f s: %s", job.__name__, delay.total_seconds(), exc)
        return f"rescheduled: {exc}"
    except Exception as exc:
        if not outages.is_unavailable(exc):
            metrics.JOB_FAILURES.labels(job.__name__).inc()
            log.warning("%s failed", job.__name__, exc_info=True)
            raise
        delay = _wait_out_outage(queue_name, wrapper, args, kwargs)
        metrics.JOB_RESCHEDULES.labels(job.__name__, "outage").inc()
        log.warning("%s waits %.0f s for Redis or the database: %s", job.__name__, delay.total_seconds(), exc)
        return f"waiting for an outage: {type(exc).__name__}"


def _wait_out_outage(queue_name: str, func: Callable, args: tuple, kwargs: dict) -> timedelta:
    """Queue the job again after a wait that doubles with each outage met in a row. Rescheduling
    needs Redis: while Redis itself is down, wait for it here (the job is not lost meanwhile: it
    is in RQ's started registry, and a worker that dies waiting leaves it to be retried)."""
    settings = services.current().settings
    job = get_current_job()
    waits = int(job.meta.get(OUTAGE_WAITS, 0)) if job is not None else 0
    in_place = 0
    while True:
        try:
            wait = outages.wait_seconds(settings, waits)
            return reschedule(queue_name, func, args, wait, {OUTAGE_WAITS: waits + 1}, kwargs=kwargs)
        except Exception as exc:
            if not outages.is_redis_down(exc):
                raise
            time.sleep(outages.wait_seconds(settings, in_place))
            in_place += 1


def reschedule(
    queue_name: str,
    func: Callable,
    args: tuple,
    seconds: float,
    meta: dict | None = None,
    *,
    kwargs: dict | None = None,
) -> timedelta:
    """Queue func(*args, **kwargs) again in `seconds`, keeping the retries the current job has left, and
    its other options (how long its result and failure are kept, its timeout)."""
    current = services.current()
    delay = timedelta(seconds=max(seconds, 1.0))
    job = get_current_job()
    options: dict = {"meta": meta} if meta else {}
    if job is None:  # run outside RQ: the new job gets Tandem's whole retry policy
        options["retry"] = current.retry()
    else:
        if job.retries_left:
            options["retry"] = Retry(max=job.retries_left, interval=job.retry_intervals or 0)
        options["description"] = job.description
        options["job_timeout"] = job.timeout
        for name in ("failure_ttl", "result_ttl"):
            if getattr(job, name) is not None:
                options[name] = getattr(job, name)
    current.queue(queue_name).enqueue_in(delay, func, args=args, kwargs=kwargs or {}, **options)
    return delay


def is_last_try() -> bool:
    """True when a failure now is final: no RQ retry is left (or we run outside RQ).

    A rate limit or an outage is never final: the job is queued again for when the wait is over
    (called from an `except` block, this looks at the exception being handled)."""
    error = sys.exc_info()[1]
    if isinstance(error, RateLimited) or (error is not None and outages.is_unavailable(error)):
        return False
    job = get_current_job()
    return job is None or not job.retries_left
