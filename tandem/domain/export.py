"""Export judgments as JSON Lines: one object per judgment row, the full history, de-blinded.

Each object carries the judgment and its provenance, the round's prompt, the rater's current
ratings and line comments in that round, the reviews, the task's metadata, and which model was
A and which was B (``model_a``, ``model_b``), which GitHub never shows. Its ``kind`` is
"judgment". A rater who scored with /rate in a round but never voted in it gets one object of
``kind`` "ratings" for that round, after the judgments: the same fields, with the judgment's own
(verdict, rationale, review, provenance of the vote) null or empty and their scores in
``ratings``.

Every object carries its round: number, prompt, who asked for it, and the head SHAs the round put
on the PRs (``round_head_sha_a``, ``round_head_sha_b``; a vote's own ``head_sha_*`` say what the
PRs showed when it was cast). Each follow-up round also gets one object of ``kind`` "round", last,
with its prompt, author, status and times, whether or not anyone voted in it yet.

Every object says whether its task is gold (``gold``, and the expected answer in ``gold_answer``;
``include_gold=False`` leaves gold tasks out) and whether it is blind (``blind``: false when the
identity-leak scan flagged the task's outputs, tandem.domain.leaks).

The judgments are read through one streaming query (``yield_per``: a server-side cursor on
PostgreSQL), and what goes with them (their tasks and rounds, scores, line comments, reviews and
the rater's other versions) is fetched per batch of rows, by index, for exactly the batch's
(round, rater) pairs, so memory stays flat however many rows there are. A task's or a round's
fields are read once per batch, not once per row. The first batch is small, so that a stream
starts at once. On PostgreSQL the batches are read a few ahead, in a thread on a connection of
its own in the export's snapshot (tandem.infra.snapshot), while the objects are made.

An incremental export (``since``, ``cursor``) reads the change feed (tandem.domain.changes) and gives
the objects that changed: a changed judgment (new, superseded), every judgment of a rater in a
round whose scores or line comments changed (they carry them) or where one of their versions was
reviewed (each carries the earlier versions' reviews in its review history), every object of a
task whose CI or own fields changed (each carries its round's CI and the task's fields, such as
``blind``), and a changed round. Each object is given whole, as it is now; its cost follows the
number of changes.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TextIO

import orjson
from sqlalchemy import Connection, Select, and_, exists, func, select, union_all
from sqlalchemy.orm import Session

from tandem.domain import changes, review_history
from tandem.domain.export_batch import Batch, rounds, tasks
from tandem.infra import bulk, snapshot
from tandem.infra.db import iso_text
from tandem.infra.models import ExportChange, Judgment, Pair, Rating, Round, Task

# Each batch costs some ten statements besides its rows: 5,000 rows a batch took a tenth less CPU than
# 2,000 (10,000 no less again), for some 12 MB more held at once.
BATCH_SIZE = 5000
FIRST_BATCH_SIZE = 100
READ_AHEAD = 2  # batches read while one is written
_RETURNED = review_history.Step.RETURNED
_step = operator.itemgetter("step")

# The judgment's columns, in the order ``_records`` unpacks them.
_JUDGMENT_COLUMN_NAMES = (
    "rater_id",
    "rater_login",
    "id",
    "verdict",
    "strength",
    "rationale",
    "review_state",
    "head_sha_a",
    "head_sha_b",
    "on_side",
    "source",
    "comment_id",
    "comment_url",
    "delivery_id",
    "voted_at",
    "recorded_at",
    "time_on_task_seconds",
    "superseded_at",
    "superseded_by_id",
    "superseded_reason",
    "task_id",
    "pair_id",
    "round_id",
    "ci_state_a",
    "ci_state_b",
)
_JUDGMENT_COLUMNS = bulk.plain(*(Judgment.__table__.c[name] for name in _JUDGMENT_COLUMN_NAMES))
# Where a row holds what a batch reads in bulk for it.
_RATER, _ID, _TASK, _PAIR, _ROUND = map(
    _JUDGMENT_COLUMN_NAMES.index, ("rater_id", "id", "task_id", "pair_id", "round_id")
)


def export_judgments(
    session: Session,
    out: TextIO,
    *,
    since: datetime | None = None,
    repo: str | None = None,
    task_id: int | None = None,
    include_gold: bool = True,
    cursor: str | None = None,
    until: str | None = None,
) -> int:
    """Write one JSON object per line to ``out`` for each judgment row; return how many.

    ``since``: only the objects a write changed at or after it (for incremental exports).
    ``cursor``: only those changed since the export that gave this token (``changes.token``)
    and, with ``until`` (a token taken before this export starts), not after it; the caller
    hands ``until`` to the next run. ``repo``: only tasks on this repository (owner/name).
    ``task_id``: only this task. ``include_gold``: also the rows of gold tasks (each marked ``gold``).
    """
    count = 0
    for record in iter_judgment_records(
        session, since=since, repo=repo, task_id=task_id, include_gold=include_gold, cursor=cursor, until=until
    ):
        out.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE).decode())
        count += 1
    return count


def judgments_for_task(session: Session, task_id: int) -> list[dict[str, Any]]:
    """The export's objects for one task, oldest first."""
    return list(iter_judgment_records(session, task_id=task_id))


def iter_judgment_records(
    session: Session,
    *,
    since: datetime | None = None,
    repo: str | None = None,
    task_id: int | None = None,
    include_gold: bool = True,
    batch_size: int = BATCH_SIZE,
    cursor: str | None = None,
    until: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the export's objects, in the order the judgments were recorded, then the scores
    of raters who did not vote, by round and rater, then the follow-up rounds."""
    window = None
    if since is not None or cursor is not None:
        window = changes.Window(
            since=since,
            start=changes.parse_token(session, cursor) if cursor is not None else None,
            end=changes.parse_token(session, until or changes.token(session)) if cursor is not None else None,
        ).conditions(session.get_bind().dialect.name == "postgresql")
    # Core, not the ORM: plain rows, and nothing of the export kept in the session.
    connection = session.connection()
    scope = functools.partial(_scoped, repo=repo, task_id=task_id, include_gold=include_gold)
    sections = (
        (scope(_judgments_query(connection, window), Judgment.task_id), _judgments_context, _records),
        (_ratings_only_query(connection, window, scope), _ratings_only_context, _ratings_only_records),
        (scope(_followups_query(window), Round.task_id), _rounds_context, _round_records),
    )

    def read(connection: Connection) -> Generator[tuple[Callable, Sequence[tuple], Any], None, None]:
        for query, context, records in sections:
            result = connection.execute(query, execution_options={"yield_per": batch_size})
            for batch in bulk.batches(result, min(FIRST_BATCH_SIZE, batch_size), batch_size):
                yield records, batch, context(connection, batch)

    # The next batches and what goes with them are read while this one's objects are made and
    # written: the database and this process work at once. Not for one task, a batch or two: its
    # own connection cost more than reading ahead saved (20 ms more to the first byte of 2,000 rows).
    reads = read(connection) if task_id is not None else snapshot.read_ahead(session, read, depth=READ_AHEAD)
    for records, batch, context in reads:
        yield from records(batch, context)


def _ratings_only_query(connection: Connection, window: list | None, scope: Callable[[Select, Any], Select]) -> Select:
    """(round, rater) of the scores given in rounds the rater never voted in; ``scope`` narrows
    the scores before they are grouped (after, a one-task export would group them all)."""

    def voted(of) -> Any:
        return exists().where(Judgment.round_id == of.round_id, Judgment.rater_id == of.rater_id)

    scored = select(
        Rating.round_id,
        Rating.rater_id,
        func.max(Rating.rater_login).label("rater_login"),
        iso_text(func.max(Rating.created_at)).label("rated_at"),
    )
    if window is None:
        scored = scored.where(~voted(Rating))
    else:
        # From the changed (round, rater) pairs that have no vote, to their scores by index: from
        # the scores of the changed rounds, every one was checked for a vote (a second for a
        # tenth of a million judgments, to find none).
        changed = (
            select(ExportChange.round_id, ExportChange.rater_id)
            .where(*window, ExportChange.rater_id.is_not(None), ExportChange.judgment_id.is_(None))
            .where(~voted(ExportChange))
            .distinct()
            .subquery()
        )
        scored = scored.join(
            changed, and_(Rating.round_id == changed.c.round_id, Rating.rater_id == changed.c.rater_id)
        )
    rows = scope(scored, Rating.task_id).group_by(Rating.round_id, Rating.rater_id).subquery()
    return (
        select(rows, Round.task_id, Pair.id.label("pair_id"))
        .join(Round, Round.id == rows.c.round_id)
        .join(Pair, Pair.task_id == Round.task_id)
        .order_by(rows.c.round_id, rows.c.rater_id)
    )


def _scoped(query: Select, task_column, *, repo: str | None, task_id: int | None, include_gold: bool) -> Select:
    """One repository's or one task's rows of a query whose rows' task is ``task_column``, and
    without gold tasks unless ``include_gold``."""
    if repo is not None:
        query = query.where(task_column.in_(select(Task.id).where(Task.repo_full_name == repo)))
    if task_id is not None:
        query = query.where(task_column == task_id)
    if not include_gold:
        query = query.where(task_column.not_in(select(Task.id).where(Task.gold.is_not(None))))
    return query


def _followups_query(window: list | None) -> Select:
    """The follow-up rounds (round 1's prompt is the task's), in order."""
    query = (
        select(Round.id.label("round_id"), Round.task_id, Pair.id.label("pair_id"))
        .join(Pair, Pair.task_id == Round.task_id)
        .where(Round.number > 1)
        .order_by(Round.task_id, Round.number)
    )
    if window is not None:
        query = query.where(Round.id.in_(select(ExportChange.round_id).where(*window, ExportChange.rater_id.is_(None))))
    return query


def _rounds_context(connection: Connection, rows) -> tuple[dict, dict]:
    round_ids = {round_id for round_id, _task, _pair in rows}
    return rounds(connection, round_ids), tasks(connection, {task_id for _round, task_id, _pair in rows})


def _round_records(rows, context: tuple[dict, dict]) -> Iterator[dict[str, Any]]:
    found_rounds, found_tasks = context
    for round_id, task_id, pair_id in rows:
        task = found_tasks[task_id]
        yield {
            "kind": "round",
            "task_id": task_id,
            "pair_id": pair_id,
            "repo": task["repo"],
            **found_rounds[round_id],
            **task["context"],
        }


def _judgments_query(connection: Connection, window: list | None) -> Select:
    query = select(*_JUDGMENT_COLUMNS).order_by(Judgment.id)
    if window is not None:
        # A change names one judgment, or all of a rater's in a round (their scores or line
        # comments, which every one of those objects carries).
        named = select(ExportChange.judgment_id).where(*window, ExportChange.judgment_id.is_not(None))
        of_rater = (
            select(Judgment.id)
            .join(
                ExportChange,
                and_(ExportChange.round_id == Judgment.round_id, ExportChange.rater_id == Judgment.rater_id),
            )
            .where(*window, ExportChange.judgment_id.is_(None))
        )
        # UNION ALL: a judgment named twice is still read once (IN, and ANY's index scan, take
        # each value once), and removing the repeats first cost half of the read of the changes.
        query = query.where(bulk.among_rows(connection, Judgment.id, union_all(named, of_rater)))
    return query


class _JudgmentsContext(NamedTuple):
    batch: Batch
    reviews: dict[int, list[dict[str, Any]]]
    steps: dict[int, list[dict[str, Any]]]


def _judgments_context(connection: Connection, rows) -> _JudgmentsContext:
    """What goes with a batch of judgment rows (in ``_JUDGMENT_COLUMNS``' order), read in bulk."""
    keys = {(row[_ROUND], row[_RATER]) for row in rows}
    batch = Batch.read(connection, {row[_TASK] for row in rows}, {row[_PAIR] for row in rows}, keys)
    # The rater's other versions of the vote and all their reviews: one read for the reviews
    # each object lists and for its review history.
    versions = review_history.versions(connection, keys)
    reviews = review_history.reviews(connection, [version[0] for chain in versions.values() for version in chain])
    return _JudgmentsContext(batch, reviews, review_history.steps(versions, reviews, {row[_ID] for row in rows}))


def _records(rows, found: _JudgmentsContext) -> Iterator[dict[str, Any]]:
    """The objects for one batch of judgment rows, with what goes with them."""
    context, reviews, steps = found
    # Each object starts as a copy of its round's template, every key in place, and its own
    # fields are then set: copying a dict costs a fraction of building one key by key.
    templates: dict[tuple[int, int, int], dict[str, Any]] = {}
    ratings, line_comments = context.ratings, context.line_comments
    for row in rows:
        (
            rater_id,
            rater_login,
            judgment_id,
            verdict,
            strength,
            rationale,
            review_state,
            head_sha_a,
            head_sha_b,
            on_side,
            source,
            comment_id,
            comment_url,
            delivery_id,
            voted_at,
            recorded_at,
            time_on_task_seconds,
            superseded_at,
            superseded_by_id,
            superseded_reason,
            task_id,
            pair_id,
            round_id,
            ci_state_a,
            ci_state_b,
        ) = row
        template = templates.get((task_id, pair_id, round_id))
        if template is None:
            template = templates[(task_id, pair_id, round_id)] = {
                "kind": "judgment",
                **context.shared(task_id, pair_id, round_id),
                **_JUDGMENT_FIELDS,
            }
        record = template.copy()
        key = (round_id, rater_id)
        history = steps.get(judgment_id, [])
        record["rater_id"] = rater_id
        record["rater_login"] = rater_login
        record["ratings"] = ratings.get(key, {})
        record["line_comments"] = line_comments.get(key, [])
        record["id"] = judgment_id
        record["verdict"] = verdict
        record["strength"] = strength
        record["rationale"] = rationale
        record["review_state"] = review_state
        record["reviews"] = reviews.get(judgment_id, [])
        record["review_history"] = history
        record["returned_before_approval"] = _RETURNED in map(_step, history)
        record["ci_at_vote"] = {"A": ci_state_a, "B": ci_state_b}
        record["head_sha_a"] = head_sha_a
        record["head_sha_b"] = head_sha_b
        record["on_side"] = on_side
        record["source"] = source
        record["comment_id"] = comment_id
        record["comment_url"] = comment_url
        record["delivery_id"] = delivery_id
        record["voted_at"] = voted_at
        record["recorded_at"] = recorded_at
        record["time_on_task_seconds"] = time_on_task_seconds
        record["current"] = superseded_at is None
        record["superseded_at"] = superseded_at
        record["superseded_by_id"] = superseded_by_id
        record["superseded_reason"] = superseded_reason
        yield record


# A judgment object's own fields, after those every object has (``Batch.shared``), in order.
_JUDGMENT_FIELDS = dict.fromkeys(
    (
        "id",
        "verdict",
        "strength",
        "rationale",
        "review_state",
        "reviews",
        "review_history",
        "returned_before_approval",
        "ci_at_vote",
        "head_sha_a",
        "head_sha_b",
        "on_side",
        "source",
        "comment_id",
        "comment_url",
        "delivery_id",
        "voted_at",
        "recorded_at",
        "time_on_task_seconds",
        "current",
        "superseded_at",
        "superseded_by_id",
        "superseded_reason",
    )
)


def _ratings_only_context(connection: Connection, rows) -> Batch:
    keys = {(round_id, rater_id) for round_id, rater_id, *_rest in rows}
    task_ids = {task_id for *_rest, task_id, _pair in rows}
    return Batch.read(connection, task_ids, {pair_id for *_rest, pair_id in rows}, keys)


def _ratings_only_records(rows, context: Batch) -> Iterator[dict[str, Any]]:
    """The objects for raters who scored in a round without voting in it: no judgment, so every
    judgment field is null (or empty), and ``current`` says whether any score still stands."""
    for round_id, rater_id, rater_login, rated_at, task_id, pair_id in rows:
        scores = context.ratings.get((round_id, rater_id), {})
        record = {"kind": "ratings", **context.shared(task_id, pair_id, round_id)}
        record["rater_id"] = rater_id
        record["rater_login"] = rater_login
        record["ratings"] = scores
        record["line_comments"] = context.line_comments.get((round_id, rater_id), [])
        yield {
            **record,
            **dict.fromkeys(_JUDGMENT_ONLY),
            "rationale": "",
            "reviews": [],
            "review_history": [],
            "rated_at": rated_at,
            "current": bool(scores),
        }


# Fields of a judgment that an object of kind "ratings" has none of.
_JUDGMENT_ONLY = (
    "id",
    "verdict",
    "strength",
    "review_state",
    "head_sha_a",
    "head_sha_b",
    "on_side",
    "source",
    "comment_id",
    "comment_url",
    "delivery_id",
    "voted_at",
    "recorded_at",
    "time_on_task_seconds",
    "superseded_at",
    "superseded_by_id",
    "superseded_reason",
    "returned_before_approval",
    "ci_at_vote",
)
