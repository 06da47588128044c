"""The export's change feed: every flush that writes a judgment, a review, a score, a line comment
or a round adds an ``export_changes`` row saying which export objects it changed, so that an
incremental export (``--since``, ``--cursor``) reads only those.

It is kept by a session listener rather than by each writer, so no write path can forget it (all
of them go through the ORM; a bulk ``insert()``/``update()`` of these tables would bypass it).

Cursors. An id from a sequence is not a safe resume point on PostgreSQL: transactions commit out
of order, so a reader that saw change 12 may not yet see change 11, which commits a moment later;
resuming after 12 would lose it. Each change therefore carries its transaction's id
(``pg_current_xact_id()``), and a reader stops at its snapshot's *xmin*: every transaction with a
smaller id had ended (committed or rolled back) when the snapshot was taken, and every later one
has a larger id. So ``[previous horizon, this horizon)`` is complete when read and is never
added to afterwards: consecutive windows cover every change exactly once. A transaction that
stays open holds the horizon back (its changes and later ones wait for the next run); nothing is
skipped. On SQLite writers are serialized (one write transaction at a time, holding the lock
until it commits), so ids commit in order and the largest committed id is a safe horizon.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, event, func, insert, literal, select, text
from sqlalchemy.orm import Session

from tandem.db import UTCDateTime, utcnow
from tandem.errors import TandemError
from tandem.models import ExportChange, Judgment, JudgmentReview, LineComment, Rating, Round, RoundSide

_PG_TXID = text("pg_current_xact_id()::text::bigint")


@event.listens_for(Session, "after_flush")
def _record(session: Session, _flush_context) -> None:
    """Add the change rows for what this flush wrote (ids of new rows are known by now)."""
    rows: set[tuple[int, int | None, int | None]] = set()
    reviewed: set[int] = set()
    for obj in (*session.new, *(o for o in session.dirty if session.is_modified(o, include_collections=False))):
        if isinstance(obj, Judgment):
            rows.add((obj.round_id, obj.rater_id, obj.id))
        elif isinstance(obj, Rating):
            rows.add((obj.round_id, obj.rater_id, None))
        elif isinstance(obj, LineComment):
            rows.add((obj.round_id, obj.author_id, None))
        elif isinstance(obj, JudgmentReview):
            reviewed.add(obj.judgment_id)
        elif isinstance(obj, Round | RoundSide):
            rows.add((obj.id if isinstance(obj, Round) else obj.round_id, None, None))
    if not rows and not reviewed:
        return
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    now = literal(utcnow(), UTCDateTime)
    txid = [_PG_TXID] if postgres else []
    targets = ["round_id", "rater_id", "judgment_id", "changed_at", *(["txid"] if postgres else [])]
    if rows:
        statement = insert(ExportChange).values(changed_at=now, **({"txid": _PG_TXID} if postgres else {}))
        connection.execute(statement, [{"round_id": r, "rater_id": u, "judgment_id": j} for r, u, j in rows])
    if reviewed:
        # A review changes its judgment's object; the judgment row may not be in this session.
        connection.execute(
            insert(ExportChange).from_select(
                targets,
                select(Judgment.round_id, Judgment.rater_id, Judgment.id, now, *txid).where(Judgment.id.in_(reviewed)),
            )
        )


@dataclass(frozen=True)
class Window:
    """Which changes an incremental export reads: since a time, and/or between two cursors."""

    since: datetime | None = None
    start: int | None = None  # from a cursor: the previous run's horizon
    end: int | None = None  # this run's horizon

    def conditions(self, postgres: bool) -> list[ColumnElement[bool]]:
        order = ExportChange.txid if postgres else ExportChange.id
        found: list[ColumnElement[bool]] = []
        if self.since is not None:
            found.append(ExportChange.changed_at >= self.since)
        if self.start is not None:
            found.append(order >= self.start)
        if self.end is not None:
            found.append(order < self.end)
        return found


def horizon(session: Session) -> int:
    """Every change below this (txid on PostgreSQL, id on SQLite) is committed and visible or
    rolled back for good; every change at or above it is yet to be read."""
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")).scalar_one()
    return session.execute(select(func.coalesce(func.max(ExportChange.id), 0) + 1)).scalar_one()


def token(session: Session) -> str:
    """The resume token for the changes from now on (opaque to users)."""
    return f"{session.get_bind().dialect.name}.{horizon(session)}"


def parse_token(session: Session, value: str) -> int:
    """The horizon in a token that ``token`` made on this kind of database."""
    kind, _, number = value.partition(".")
    if kind != session.get_bind().dialect.name or not number.isdigit():
        raise TandemError(f"--cursor {value!r}: not a cursor from an export of this database")
    return int(number)
