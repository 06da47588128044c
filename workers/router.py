"""One small router: (event, action) -> handlers, in the spirit of gidgethub's.

Each handler module keeps its own Router; workers.deliveries joins them. Which events are handled
is said once, in tandem.domain.webhook_events: a handler may register only for those, and the joined
router must cover them all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from tandem.domain import webhook_events
from tandem.domain.webhook_payloads import E, Event, narrow
from tandem.infra import job_names
from tandem.infra.models import OutboxEntry
from tandem.infra.services import Services


@dataclass
class Delivery:
    """A verified webhook delivery being processed inside one database transaction."""

    id: str
    event: str
    action: str | None
    payload: Event  # of the event's model in tandem.domain.webhook_payloads
    session: Session
    services: Services
    # What the handler's resolver asked of GitHub before the transaction opened (Router.register).
    resolved: Any = None
    # The jobs to queue once the transaction has committed (those that write to GitHub: never
    # inside the transaction, so a rolled-back delivery leaves nothing behind on GitHub).
    outbox_entries: list[OutboxEntry] = field(default_factory=list)

    def payload_as(self, model: type[E]) -> E:
        """The payload as the event's model, which the handler reads (or Unprocessable)."""
        return narrow(self.payload, model)

    def enqueue_after_commit(self, queue_name: str, job: str, *, coalesce: str | None = None, **arguments) -> None:
        """Queue the job (named in tandem.infra.job_names) after the commit; recorded in the transaction,
        so nothing is lost."""
        entry = OutboxEntry(
            queue=queue_name, func=job, args=[], kwargs=job_names.payload(job, **arguments), coalesce_key=coalesce
        )
        self.session.add(entry)
        self.outbox_entries.append(entry)


Handler = Callable[[Delivery], None]
# Asks GitHub what a handler will need (services, action, payload), with no transaction open: an
# answer may wait seconds on a rate limit, and a database transaction must not wait with it.
# It reads the payload as its event's model with tandem.domain.webhook_payloads.narrow.
Resolver = Callable[[Services, str | None, Event], Any]


class Router:
    def __init__(self, *others: Router):
        self._handlers: dict[tuple[str, str | None], list[Handler]] = defaultdict(list)
        self._resolvers: dict[Handler, Resolver] = {}
        for other in others:
            for key, handlers in other._handlers.items():
                self._handlers[key].extend(handlers)
            self._resolvers |= other._resolvers

    def register(self, event: str, *actions: str, resolve: Resolver | None = None) -> Callable[[Handler], Handler]:
        """Decorate a handler for event with any of actions (none: every action); `resolve`, run
        before the delivery's transaction, gives what the handler reads as `delivery.resolved`."""

        for action in actions or (None,):
            if (event, action) not in webhook_events.event_actions():
                raise ValueError(f"{event}.{action or '*'} is not in tandem.domain.webhook_events.HANDLED")

        def decorator(handler: Handler) -> Handler:
            for action in actions or (None,):
                self._handlers[(event, action)].append(handler)
            if resolve is not None:
                self._resolvers[handler] = resolve
            return handler

        return decorator

    def handlers_for(self, event: str, action: str | None) -> list[Handler]:
        return self._handlers.get((event, action), []) + (
            self._handlers.get((event, None), []) if action is not None else []
        )

    def resolve(self, handler: Handler, services: Services, action: str | None, payload: Event) -> Any:
        resolver = self._resolvers.get(handler)
        return resolver(services, action, payload) if resolver is not None else None

    def check_covers(self, handled: set[tuple[str, str | None]]) -> None:
        """Raise unless every handled (event, action) has a handler."""
        if missing := handled - {key for key, handlers in self._handlers.items() if handlers}:
            raise ValueError(f"no handler for {sorted(missing, key=str)} of tandem.domain.webhook_events.HANDLED")
