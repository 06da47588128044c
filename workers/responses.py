"""Jobs that write to GitHub after a delivery's effects are committed."""

from __future__ import annotations

from tandem import acknowledgments, pair_sync, pr_notices, queue, services
from workers.jobs import waits_out_rate_limits


@waits_out_rate_limits(queue.PAIRS)
def acknowledge(
    installation_id: int, repo: str, pr_number: int, source: str, source_id: int, author: str, outsider: bool,
    results: list[dict],
) -> None:
    acknowledgments.acknowledge(
        services.current(), installation_id, repo, pr_number, source, source_id, author, outsider, results
    )


@waits_out_rate_limits(queue.PAIRS)
def ask_reviewers_again(
    installation_id: int, repo: str, pr_number: int, reviewers: list[str], rater: str, round_number: int
) -> None:
    pr_notices.ask_again(services.current(), installation_id, repo, pr_number, reviewers, rater, round_number)


@waits_out_rate_limits(queue.PAIRS)
def tell_ci_finished(installation_id: int, repo: str, pr_numbers: list[int], round_number: int) -> None:
    pr_notices.ci_finished(services.current(), installation_id, repo, pr_numbers, round_number)


def sync_pending(pair_id: int) -> str:
    """The coalescing key of a pair's sync: ten votes in a burst queue one sync, not ten."""
    return f"tandem:pair:{pair_id}:sync-pending"


@waits_out_rate_limits(queue.PAIRS)
def sync_pair(pair_id: int) -> str:
    current = services.current()
    # From here on, a newer change queues a sync of its own: it may not be seen by this one.
    current.redis.delete(sync_pending(pair_id))
    return pair_sync.sync_pair(current, pair_id)
