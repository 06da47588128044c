"""Which rows an export takes, and how it shapes them: the options of `tandem export` and of
GET /api/export, parsed once for both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tandem.domain.statistics.filters import Filters
from tandem.domain.vocabulary import SIDES, ReviewState
from tandem.infra.errors import TandemError

TIES = ("keep", "drop")


@dataclass(frozen=True)
class Selection:
    """``since``, ``repo``: as the raw export takes them. ``round``, ``metadata``: only that round,
    only tasks whose metadata has each KEY=VALUE. Training formats take only each rater's current
    vote, approved by a reviewer unless ``include_unapproved`` (every task needs approval), and no
    gold task unless ``include_gold``. ``ties``: keep or drop votes for tie or neither (formats
    with a chosen and a rejected side have no place for them and always drop them).
    ``with_files``: a response carries the full text of the files it changed after its diff.
    ``conversational``: role/content messages rather than text (trl). ``team``: only its tasks.
    ``cursor``, ``until``: only what changed between two exports' tokens (tandem.domain.changes)."""

    since: datetime | None = None
    repo: str | None = None
    round: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    include_unapproved: bool = False
    include_gold: bool = False
    ties: str = "keep"
    with_files: bool = False
    conversational: bool = False
    team: str | None = None
    cursor: str | None = None  # an incremental export's resume token (tandem.domain.changes)
    until: str | None = None  # and the token taken as this export started

    @classmethod
    def parse(
        cls,
        *,
        since: str | None = None,
        repo: str | None = None,
        round: int | None = None,
        metadata: Sequence[str] = (),
        ties: str = "keep",
        **flags: Any,  # the boolean options and team, cursor and until, as the fields name them
    ) -> Selection:
        """From text, as the command line and the HTTP API take it; a TandemError names what is
        wrong (the filters are parsed as `tandem stats` parses them)."""
        filters = Filters.parse(since=since, repo=repo, round=round, metadata=metadata)
        if ties not in TIES:
            raise TandemError(f"ties {ties!r}: use keep or drop")
        return cls(since=filters.since, repo=repo, round=round, metadata=filters.metadata, ties=ties, **flags)

    @property
    def narrows(self) -> bool:
        """Whether ``takes`` leaves any object out."""
        return self.round is not None or bool(self.metadata)

    def takes(self, row: dict) -> bool:
        """Whether a raw export object is in the selection's round and metadata."""
        if self.round is not None and row["round"] != self.round:
            return False
        metadata = row["task_metadata"]
        return all(key in metadata and str(metadata[key]) == value for key, value in self.metadata.items())

    def counts(self, row: dict) -> bool:
        """Whether a judgment object is a vote that training formats count."""
        return (
            row["kind"] == "judgment"
            and row["current"]
            and (self.include_unapproved or row["review_state"] == ReviewState.APPROVED)
            and (self.include_gold or not row["gold"])
            and (self.ties == "keep" or row["verdict"] in SIDES)
        )
