"""Jobs that write to GitHub after a delivery's effects are committed."""

from __future__ import annotations

from tandem import acknowledgments, pair_sync, queue, services
from workers.jobs import waits_out_rate_limits


@waits_out_rate_limits(queue.PAIRS)
def acknowledge(
    installation_id: int, repo: str, pr_number: int, comment_id: int | None, author: str, results: list[dict]
) -> None:
    acknowledgments.acknowledge(services.current(), installation_id, repo, pr_number, comment_id, author, results)


def _sync_pending(pair_id: int) -> str:
    return f"tandem:pair:{pair_id}:sync-pending"


def request_sync(current: services.Services, pair_id: int) -> None:
    """Queue a sync of the pair unless one is already waiting: ten votes in a burst cost one sync."""
    if current.redis.set(_sync_pending(pair_id), 1, nx=True, ex=3600):
        current.enqueue(queue.PAIRS, sync_pair, pair_id)


@waits_out_rate_limits(queue.PAIRS)
def sync_pair(pair_id: int) -> str:
    current = services.current()
    # From here on, a newer change queues a sync of its own: it may not be seen by this one.
    current.redis.delete(_sync_pending(pair_id))
    return pair_sync.sync_pair(current, pair_id)
