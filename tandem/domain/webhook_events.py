"""The webhook events Tandem handles: one table, read by the web side (which queues only these,
and answers the rest "ignored" without loading any handler) and by workers.router (which refuses
a handler for an event not listed here, and workers.deliveries, which refuses to start if a
listed event has no handler)."""

from __future__ import annotations

EVERY_ACTION = None

# event -> the actions handled (EVERY_ACTION: whatever the action, or none).
HANDLED: dict[str, frozenset[str] | None] = {
    "installation": frozenset({"created", "new_permissions_accepted", "unsuspend", "deleted", "suspend"}),
    "installation_repositories": frozenset({"added", "removed"}),
    "push": EVERY_ACTION,
    "pull_request": frozenset({"synchronize"}),
    "issue_comment": frozenset({"created", "edited", "deleted"}),
    "pull_request_review": frozenset({"submitted", "edited"}),
    "pull_request_review_comment": frozenset({"created", "edited", "deleted"}),
    "membership": frozenset({"added", "removed"}),
    "team": frozenset({"created", "deleted", "edited"}),
    "organization": frozenset({"member_added", "member_removed"}),
    "check_run": EVERY_ACTION,
    "check_suite": EVERY_ACTION,
    "status": EVERY_ACTION,
}


def handles(event: str, action: str | None) -> bool:
    if event not in HANDLED:
        return False
    actions = HANDLED[event]
    return actions is EVERY_ACTION or action in actions


def event_actions() -> set[tuple[str, str | None]]:
    """(event, action) pairs, as workers.router registers them (None: every action)."""
    return {(event, action) for event, actions in HANDLED.items() for action in (actions or (None,))}
