"""Jobs on the `pairs` queue: opening a task's two draft PRs."""

from __future__ import annotations

from tandem.domain import pairs
from tandem.infra import queue, services
from workers.jobs import is_last_try, runs_on


@runs_on(queue.PAIRS)
def open_pair(*, task_id: int) -> str:
    current = services.current()
    try:
        return pairs.open_pair(current, task_id)
    except Exception as exc:
        if is_last_try():
            # Out of retries (GitHub down for long): say so on the task and take back what is up.
            pairs.give_up(current, task_id, f"GitHub kept failing: {type(exc).__name__}")
        raise
