"""Tasks as a test reads them back."""

from __future__ import annotations

from tandem.infra.models import Task


def failure(services, task_id: int) -> str:
    """The reason a task failed (it must have)."""
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        assert task.status == "failed"
        return task.failure_reason
