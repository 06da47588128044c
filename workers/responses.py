"""Jobs that write to GitHub after a delivery's effects are committed."""

from __future__ import annotations

from tandem.domain import acknowledgments, pair_sync, pr_notices
from tandem.infra import job_names, liveness, metrics, outbox, queue, redis_keys, services
from tandem.infra.errors import RateLimited
from workers.jobs import runs_on


@runs_on(queue.PAIRS)
def acknowledge(
    *,
    installation_id: int,
    repo: str,
    pr_number: int,
    source: str,
    source_id: int,
    author: str,
    outsider: bool,
    results: list[dict],
) -> None:
    acknowledgments.acknowledge(
        services.current(),
        installation_id=installation_id,
        repo=repo,
        pr_number=pr_number,
        source=source,
        source_id=source_id,
        author=author,
        outsider=outsider,
        results=results,
    )


def _after_the_wait(current: services.Services, exc: RateLimited, key: str, job: str, **arguments: object) -> str:
    """A coalesced job GitHub told to wait: one job of the same kind for when the wait is over,
    joined by every entry that comes meanwhile (the entries' rows stay until it has run)."""
    outbox.coalesce(
        current, queue.PAIRS, job, [], key, kwargs=job_names.payload(job, **arguments), not_before=exc.seconds
    )
    metrics.JOB_RESCHEDULES.labels(job.rsplit(".", 1)[-1], "rate_limit").inc()
    return f"rescheduled: {exc}"


# A job answering waiting commands waits this long for another answering the same installation's.
ANSWERING_WAIT = 60


@runs_on(queue.PAIRS)
def acknowledge_waiting(*, installation_id: int, **_scheduling: object) -> str:
    """Answer every command of the installation waiting for its answer: one job per short window
    for a burst of votes, not one each (tandem.infra.outbox coalesces them). Its own arguments are
    those of the answer that scheduled it, which is among the waiting ones.

    One such job at a time per installation (a lease): two would answer the same commands. An
    answer given is forgotten even if a later one fails; a job killed before forgetting leaves its
    answers to be given again, which GitHub and tandem.domain.acknowledgments take once."""
    current = services.current()
    key = redis_keys.acknowledgments(installation_id)
    answered: list[int] = []
    with liveness.lease(current.redis, key, blocking_timeout=ANSWERING_WAIT):
        try:
            for entry_id, arguments in outbox.waiting_arguments(current, key):
                # (Of the version this job's own arguments were checked to be: the same release's.)
                answer = {name: value for name, value in arguments.items() if name != job_names.VERSION}
                acknowledgments.acknowledge(current, **answer)
                answered.append(entry_id)
        except RateLimited as exc:
            return _after_the_wait(current, exc, key, job_names.ACKNOWLEDGE_WAITING, installation_id=installation_id)
        finally:
            outbox.forget(current, answered)
    return f"{len(answered)} answered"


@runs_on(queue.PAIRS)
def ask_reviewers_again(
    *,
    installation_id: int,
    repo: str,
    pr_number: int,
    reviewers: list[str],
    rater: str,
    round_number: int,
    judgment_id: int,
) -> None:
    pr_notices.ask_again(
        services.current(),
        installation_id=installation_id,
        repo=repo,
        pr_number=pr_number,
        reviewers=reviewers,
        rater=rater,
        round_number=round_number,
        judgment_id=judgment_id,
    )


@runs_on(queue.PAIRS)
def tell_ci_finished(*, installation_id: int, repo: str, pr_numbers: list[int], round_number: int) -> None:
    pr_notices.ci_finished(
        services.current(), installation_id=installation_id, repo=repo, pr_numbers=pr_numbers, round_number=round_number
    )


@runs_on(queue.PAIRS)
def sync_pair(*, pair_id: int) -> str:
    current = services.current()
    key = redis_keys.pair_sync(pair_id)
    seen = outbox.waiting(current, key)  # before the sync reads the pair: it shows all of these
    try:
        state = pair_sync.sync_pair(current, pair_id)
    except RateLimited as exc:
        return _after_the_wait(current, exc, key, job_names.SYNC_PAIR, pair_id=pair_id)
    outbox.forget(current, seen)
    return state
