"""Outgoing webhooks to the team's model runner (`round.awaiting_outputs`, `round.closed`,
`task.closed`). Called inside the transaction that changes a round, so an event is recorded
exactly when its change is.

R-runner replaces this stub with an outbox row per event, delivered signed with retries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

ROUND_AWAITING_OUTPUTS = "round.awaiting_outputs"
ROUND_CLOSED = "round.closed"
TASK_CLOSED = "task.closed"


def emit(session: Session, event: str, payload: dict[str, Any]) -> None:
    """Record an event for the runner (nothing yet: see the module's docstring)."""
