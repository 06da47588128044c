"""Jobs on the `pairs` queue for rounds: putting an accepted round on both PRs, and telling both
PRs of a round that expired."""

from __future__ import annotations

from tandem.domain.rounds import apply
from tandem.infra import job_names, queue, services
from workers.jobs import is_last_try, runs_on


@runs_on(queue.PAIRS)
def apply_round(*, task_id: int, number: int) -> str:
    current = services.current()
    try:
        return apply.apply_round(current, task_id, number)
    except Exception as exc:
        # GitHub kept failing: the round fails, saying why (the PRs keep round N - 1), or, its
        # commits already on both PRs, opens.
        if is_last_try():
            apply.give_up(current, task_id, number, f"GitHub kept failing: {type(exc).__name__}")
        raise


@runs_on(queue.PAIRS)
def announce_round(*, task_id: int, number: int) -> None:
    apply.announce(services.current(), task_id, number)


def expire_rounds(current: services.Services) -> list[str]:
    """Close the rounds whose outputs did not come in time, and queue telling both PRs."""
    lines = []
    for task_id, number in apply.expire(current):
        current.enqueue(
            queue.PAIRS,
            job_names.ANNOUNCE_ROUND,
            kwargs=job_names.payload(job_names.ANNOUNCE_ROUND, task_id=task_id, number=number),
            job_id=f"announce-round-{task_id}-{number}",
        )
        lines.append(f"task {task_id} round {number} expired: its outputs did not come in time")
    return lines
