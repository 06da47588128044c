"""Jobs that wait (RQ's scheduled registry), and time passing for them without sleeping."""

from __future__ import annotations

from rq.registry import ScheduledJobRegistry


def scheduled_jobs(services, name: str) -> list:
    q = services.queue(name)
    registry = ScheduledJobRegistry(queue=q)
    return [(q.fetch_job(job_id), registry.get_scheduled_time(job_id)) for job_id in registry.get_job_ids()]


def time_passes(services, name: str) -> None:
    """The waits are over: GitHub's holds on the installation lapse, and scheduled jobs are due."""
    for hold in services.redis.scan_iter("tandem:*:held"):
        services.redis.delete(hold)
    run_scheduled(services, name)


def run_scheduled(services, name: str) -> None:
    """The scheduler's work: move every scheduled job to its queue."""
    q = services.queue(name)
    registry = ScheduledJobRegistry(queue=q)
    for job_id in registry.get_job_ids():
        registry.remove(job_id)
        q.enqueue_job(q.fetch_job(job_id))
