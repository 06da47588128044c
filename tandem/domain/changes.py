"""The export's change feed: every flush that writes a judgment, a review, a score, a line comment,
a round, a CI report or a task's fields that its objects carry (a leak flagged: ``blind``) adds
``export_changes`` rows saying which export objects it changed, so that an incremental export
(``--since``, ``--cursor``) reads only those.

It is kept by a session listener rather than by each writer, so no write path can forget it (all
of them go through the ORM; a bulk ``insert()``/``update()`` of these tables would bypass it).

Cursors. An id from a sequence is not a safe resume point on PostgreSQL: transactions commit out
of order, so a reader that saw change 12 may not yet see change 11, which commits a moment later;
resuming after 12 would lose it. Each change therefore carries its transaction's id
(``pg_current_xact_id()``), and a run reads up to its snapshot's horizon: below the snapshot's
*xmax* (every later transaction has a larger id), leaving out the transactions still in progress
then (its *xip* list), which the token carries so that the next run picks them up once they have
committed. Consecutive runs thus read every committed change exactly once, whatever the order of
commits, and an unrelated long transaction delays nothing. On SQLite writers are serialized (one
write transaction at a time, holding the lock until it commits), so ids commit in order and the
largest committed id is a safe horizon.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    cast,
    event,
    func,
    insert,
    inspect,
    literal,
    null,
    or_,
    select,
    text,
    union,
)
from sqlalchemy.orm import Session

from tandem.infra.db import UTCDateTime, utcnow
from tandem.infra.errors import TandemError
from tandem.infra.models import (
    CiCheck,
    ExportChange,
    Judgment,
    JudgmentReview,
    LineComment,
    Rating,
    Round,
    RoundSide,
    Task,
)

_PG_TXID = text("pg_current_xact_id()::text::bigint")
# A task's fields that every object of the task carries (tandem.domain.export_batch.tasks).
_TASK_FIELDS = ("repo_full_name", "base", "base_sha", "metadata_", "gold", "leaks")


@event.listens_for(Session, "after_flush")
def _record(session: Session, _flush_context) -> None:
    """Add the change rows for what this flush wrote (ids of new rows are known by now)."""
    rows: set[tuple[int, int | None, int | None]] = set()
    reviewed: set[int] = set()
    whole_tasks: set[int] = set()
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
        elif isinstance(obj, CiCheck):
            whole_tasks.add(obj.task_id)
        elif isinstance(obj, Task) and obj in session.dirty:
            state = inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in _TASK_FIELDS):
                whole_tasks.add(obj.id)
    if not rows and not reviewed and not whole_tasks:
        return
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    now = literal(utcnow(), UTCDateTime)
    txid = [_PG_TXID] if postgres else []
    targets = ["round_id", "rater_id", "judgment_id", "changed_at", *(["txid"] if postgres else [])]
    if rows:
        statement = insert(ExportChange).values(changed_at=now, **({"txid": _PG_TXID} if postgres else {}))
        connection.execute(statement, [{"round_id": r, "rater_id": u, "judgment_id": j} for r, u, j in rows])
    # The judgment rows may not be in this session.
    if reviewed:
        # A review changes its judgment's object and those of the rater's later versions of the
        # vote in the round (a version's review history holds the earlier ones' reviews, and
        # "resubmitted" after one returned): all of the rater's versions there, as scores do.
        connection.execute(
            insert(ExportChange).from_select(
                targets,
                # Typed: under DISTINCT, PostgreSQL takes a bare NULL for text.
                select(Judgment.round_id, Judgment.rater_id, cast(null(), Integer), now, *txid)
                .where(Judgment.id.in_(reviewed))
                .distinct(),
            )
        )
    if whole_tasks:
        # A CI report changes round_ci, a task's own fields (a leak found in a later round's
        # outputs) what all of its objects say of it: every object of the task's rounds (a head is
        # a round's, or, in round 1, the PR's: re-sending the task's few objects is simpler), each
        # version of each rater's vote, the scores of raters who did not vote, and the rounds.
        objects = union(
            select(Judgment.round_id, Judgment.rater_id).where(Judgment.task_id.in_(whole_tasks)),
            select(Rating.round_id, Rating.rater_id).where(Rating.task_id.in_(whole_tasks)),
            select(Round.id, cast(null(), BigInteger)).where(Round.task_id.in_(whole_tasks)),
        ).subquery()
        connection.execute(
            insert(ExportChange).from_select(
                targets, select(objects.c.round_id, objects.c.rater_id, null(), now, *txid)
            )
        )


@dataclass(frozen=True)
class Horizon:
    """Where a run of the feed stops and the next one starts: every change below ``below`` is
    settled except those of the transactions still ``pending`` then (read by a later run)."""

    below: int
    pending: tuple[int, ...] = ()


@dataclass(frozen=True)
class Window:
    """Which changes an incremental export reads: since a time, and/or between two horizons."""

    since: datetime | None = None
    start: Horizon | None = None  # from a cursor: the previous run's horizon
    end: Horizon | None = None  # this run's horizon

    def conditions(self, postgres: bool) -> list[ColumnElement[bool]]:
        order = ExportChange.txid if postgres else ExportChange.id
        found: list[ColumnElement[bool]] = []
        if self.since is not None:
            found.append(ExportChange.changed_at >= self.since)
        if self.start is not None:
            later = order >= self.start.below
            found.append(or_(later, order.in_(self.start.pending)) if self.start.pending else later)
        if self.end is not None:
            found.append(order < self.end.below)
            if self.end.pending:
                found.append(order.not_in(self.end.pending))
        return found


def horizon(session: Session) -> Horizon:
    """On PostgreSQL, the current snapshot's xmax and the transactions in progress below it
    (whose changes may commit later); on SQLite, just past the largest committed id."""
    if session.get_bind().dialect.name == "postgresql":
        below, pending = session.execute(
            text(
                "SELECT pg_snapshot_xmax(s)::text::bigint, ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(s) x) "
                "FROM pg_current_snapshot() s"
            )
        ).one()
        return Horizon(below, tuple(sorted(pending)))
    return Horizon(session.execute(select(func.coalesce(func.max(ExportChange.id), 0) + 1)).scalar_one())


def token(session: Session) -> str:
    """The resume token for the changes from now on (opaque to users)."""
    found = horizon(session)
    return ".".join([session.get_bind().dialect.name, str(found.below), *map(str, found.pending)])


def parse_token(session: Session, value: str) -> Horizon:
    """The horizon in a token that ``token`` made on this kind of database."""
    kind, *numbers = value.split(".")
    if kind != session.get_bind().dialect.name or not numbers or not all(n.isdigit() for n in numbers):
        raise TandemError(f"--cursor {value!r}: not a cursor from an export of this database")
    return Horizon(int(numbers[0]), tuple(int(n) for n in numbers[1:]))
