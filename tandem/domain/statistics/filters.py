"""Which judgments count, as `tandem stats`, GET /api/stats and the exports take it from text:
apart from the queries (tandem.domain.statistics.queries), so that an export, which needs only
these, does not load numpy and the statistics (a fifth of its start-up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement

from tandem.infra.errors import TandemError


@dataclass(frozen=True)
class Filters:
    """Which judgments count. ``since``/``until`` bound when the vote (or score) was written;
    ``metadata``: the task's metadata has each key with that value; ``models``: both models of
    the pair are among these. ``tasks``: further conditions on the task (e.g. whose it is)."""

    repo: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    round: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    models: frozenset[str] | None = None
    include_unapproved: bool = False
    tasks: tuple[ColumnElement[bool], ...] = ()

    @classmethod
    def parse(
        cls,
        *,
        repo: str | None = None,
        since: str | None = None,
        until: str | None = None,
        round: int | None = None,
        metadata: Sequence[str] = (),
        models: Sequence[str] = (),
        include_unapproved: bool = False,
    ) -> Filters:
        """Filters from text, as the command line and the HTTP API take them; a TandemError
        names what is wrong."""
        pairs = {}
        for item in metadata:
            key, equals, value = item.partition("=")
            if not equals or not key:
                raise TandemError(f"metadata {item!r}: use KEY=VALUE, like suite=x")
            pairs[key] = value
        if round is not None and round < 1:
            raise TandemError(f"round {round}: rounds are numbered from 1")
        return cls(
            repo=repo,
            since=_moment("since", since),
            until=_moment("until", until),
            round=round,
            metadata=pairs,
            models=frozenset(models) if models else None,
            include_unapproved=include_unapproved,
        )


def _moment(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TandemError(f"{name} {text!r}: use an ISO 8601 date or time, like 2026-11-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
