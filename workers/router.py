"""One small router: (event, action) -> handlers, in the spirit of gidgethub's.

Each handler module keeps its own Router; workers.deliveries joins them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from tandem import outbox
from tandem.models import OutboxEntry
from tandem.services import Services


@dataclass
class Delivery:
    """A verified webhook delivery being processed inside one database transaction."""

    id: str
    event: str
    action: str | None
    payload: dict[str, Any]
    session: Session
    services: Services
    # The jobs to queue once the transaction has committed (those that write to GitHub: never
    # inside the transaction, so a rolled-back delivery leaves nothing behind on GitHub).
    outbox_entries: list[OutboxEntry] = field(default_factory=list)

    def enqueue_after_commit(self, queue_name: str, func: Callable | str, *args, coalesce: str | None = None) -> None:
        """Queue func(*args) after the commit; recorded in the transaction, so nothing is lost."""
        entry = OutboxEntry(queue=queue_name, func=outbox.job_path(func), args=list(args), coalesce_key=coalesce)
        self.session.add(entry)
        self.outbox_entries.append(entry)


Handler = Callable[[Delivery], None]


class Router:
    def __init__(self, *others: Router):
        self._handlers: dict[tuple[str, str | None], list[Handler]] = defaultdict(list)
        for other in others:
            for key, handlers in other._handlers.items():
                self._handlers[key].extend(handlers)

    def register(self, event: str, *actions: str) -> Callable[[Handler], Handler]:
        """Decorate a handler for event with any of actions (none: every action)."""

        def decorator(handler: Handler) -> Handler:
            for action in actions or (None,):
                self._handlers[(event, action)].append(handler)
            return handler

        return decorator

    def handlers_for(self, event: str, action: str | None) -> list[Handler]:
        return self._handlers.get((event, action), []) + (
            self._handlers.get((event, None), []) if action is not None else []
        )

    def handles(self, event: str, action: str | None) -> bool:
        return bool(self.handlers_for(event, action))
