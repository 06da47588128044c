"""Jobs that write to GitHub after a delivery's effects are committed."""

from __future__ import annotations

from tandem import acknowledgments, pair_sync, queue, services
from workers.jobs import waits_out_rate_limits


@waits_out_rate_limits(queue.PAIRS)
def acknowledge(
    installation_id: int, repo: str, pr_number: int, comment_id: int | None, author: str, results: list[dict]
) -> None:
    acknowledgments.acknowledge(services.current(), installation_id, repo, pr_number, comment_id, author, results)


@waits_out_rate_limits(queue.PAIRS)
def sync_pair(pair_id: int) -> str:
    return pair_sync.sync_pair(services.current(), pair_id)
