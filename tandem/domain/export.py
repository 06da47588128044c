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
starts at once.

An incremental export (``since``, ``cursor``) reads the change feed (tandem.domain.changes) and gives
the objects that changed: a changed judgment (new, superseded, reviewed), every judgment of a
rater in a round whose scores or line comments changed (they carry them), and a changed round.
Each object is given whole, as it is now; its cost follows the number of changes.
"""

from __future__ import annotations

import functools
import operator
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import orjson
from sqlalchemy import Connection, Select, and_, exists, func, select, tuple_, union
from sqlalchemy.orm import Session

from tandem.domain import changes, ci, review_history
from tandem.infra import bulk
from tandem.infra.db import iso_text
from tandem.infra.models import (
    ExportChange,
    Judgment,
    LineComment,
    Output,
    Pair,
    Rating,
    Round,
    RoundSide,
    Side,
    Task,
)

BATCH_SIZE = 2000
FIRST_BATCH_SIZE = 100
_RETURNED = review_history.Step.RETURNED
_step = operator.itemgetter("step")

_JUDGMENT_COLUMNS = bulk.plain(*Judgment.__table__.columns)


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
    for query, records in (
        (scope(_judgments_query(connection, window), Judgment.task_id), _records),
        (_ratings_only_query(connection, window, scope), _ratings_only_records),
        (scope(_followups_query(window), Round.task_id), _round_records),
    ):
        result = connection.execute(query, execution_options={"yield_per": batch_size})
        try:
            keys = list(result.keys())
            size = min(FIRST_BATCH_SIZE, batch_size)
            while batch := result.fetchmany(size):
                yield from records(connection, [dict(zip(keys, row, strict=True)) for row in batch])
                size = batch_size
        finally:
            result.close()


def _ratings_only_query(connection: Connection, window: list | None, scope: Callable[[Select, Any], Select]) -> Select:
    """(round, rater) of the scores given in rounds the rater never voted in; ``scope`` narrows
    the scores before they are grouped (after, a one-task export would group them all)."""
    voted = exists().where(Judgment.round_id == Rating.round_id, Judgment.rater_id == Rating.rater_id)
    scored = select(
        Rating.round_id,
        Rating.rater_id,
        func.max(Rating.rater_login).label("rater_login"),
        iso_text(func.max(Rating.created_at)).label("rated_at"),
    ).where(~voted)
    if window is not None:
        changed = select(ExportChange.round_id, ExportChange.rater_id).where(
            *window, ExportChange.rater_id.is_not(None), ExportChange.judgment_id.is_(None)
        )
        # The rounds first, by index: else every score is checked for a vote before the changes narrow them.
        scored = scored.where(
            bulk.among_rows(connection, Rating.round_id, changed.with_only_columns(ExportChange.round_id)),
            tuple_(Rating.round_id, Rating.rater_id).in_(changed),
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


def _round_records(connection: Connection, rows) -> Iterator[dict[str, Any]]:
    rounds = _rounds(connection, {row["round_id"] for row in rows})
    tasks = _tasks(connection, {row["task_id"] for row in rows})
    for row in rows:
        task = tasks[row["task_id"]]
        yield {
            "kind": "round",
            "task_id": row["task_id"],
            "pair_id": row["pair_id"],
            "repo": task["repo"],
            **rounds[row["round_id"]],
            **task["context"],
        }


def _tasks(connection: Connection, task_ids: set[int]) -> dict[int, dict[str, Any]]:
    """Each task's repository, and the fields every object of the task ends with: its base, its
    metadata, whether it is gold (and its answer), and whether it is blind: the leak scan found
    nothing in its outputs that could tell raters which model wrote them (tandem.domain.leaks)."""
    found: dict[int, dict[str, Any]] = {}
    columns = (Task.id, Task.repo_full_name, Task.base, Task.base_sha, Task.metadata_, Task.gold, Task.leaks)
    for task_id, repo, base, base_sha, metadata, gold, leaks in connection.execute(
        select(*columns).where(bulk.among(connection, Task.id, task_ids))
    ).all():
        found[task_id] = {
            "repo": repo,
            "context": {
                "task_base": base,
                "task_base_sha": base_sha,
                "task_metadata": metadata or {},
                "gold": gold is not None,
                "gold_answer": gold,
                "blind": not leaks,
            },
        }
    return found


def _rounds(connection: Connection, round_ids: set[int]) -> dict[int, dict[str, Any]]:
    """Each round's number and prompt, who asked for it, its state and times, and the heads it
    put on the PRs."""
    found: dict[int, dict[str, Any]] = {}
    columns = (
        Round.id,
        Round.number,
        Round.prompt,
        Round.author_login,
        Round.status,
        Round.closed_reason,
        Round.created_at,
        Round.opened_at,
        Round.closed_at,
    )  # not the outputs: JSON, decoded for nothing
    for row in bulk.dicts(
        connection.execute(select(*bulk.plain(*columns)).where(bulk.among(connection, Round.id, round_ids)))
    ):
        found[row["id"]] = {
            "round": row["number"],
            "round_prompt": row["prompt"],
            "round_author": row["author_login"],
            "round_status": row["status"],
            "round_closed_reason": row["closed_reason"],
            "round_started_at": row["created_at"],
            "round_opened_at": row["opened_at"],
            "round_closed_at": row["closed_at"],
            "round_head_sha_a": None,
            "round_head_sha_b": None,
        }
    for round_id, sides in ci.rounds_ci(connection, round_ids).items():
        found[round_id]["round_ci"] = ci.view(sides)
    for round_id in found:
        found[round_id].setdefault("round_ci", ci.view({}))
    for round_id, letter, head_sha in bulk.tuples(
        connection.execute(
            select(RoundSide.round_id, RoundSide.letter, RoundSide.head_sha).where(
                bulk.among(connection, RoundSide.round_id, round_ids)
            )
        )
    ):
        found[round_id][f"round_head_sha_{letter.lower()}"] = head_sha
    return found


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
        query = query.where(bulk.among_rows(connection, Judgment.id, union(named, of_rater)))
    return query


def _records(connection: Connection, rows) -> Iterator[dict[str, Any]]:
    """The objects for one batch of judgment rows, with what goes with them fetched in bulk."""
    context = _context(connection, rows)
    # The rater's other versions of the vote and all their reviews: one read for the reviews
    # each object lists and for its review history.
    versions = review_history.versions(connection, {(row["round_id"], row["rater_id"]) for row in rows})
    reviews = review_history.reviews(connection, [version["id"] for chain in versions.values() for version in chain])
    steps = review_history.steps(versions, reviews, {row["id"] for row in rows})
    for row in rows:
        history = steps.get(row["id"], [])
        yield {
            "kind": "judgment",
            **_shared(row, context),
            "id": row["id"],
            "verdict": row["verdict"],
            "strength": row["strength"],
            "rationale": row["rationale"],
            "review_state": row["review_state"],
            "reviews": [_review(review) for review in reviews.get(row["id"], ())],
            "review_history": history,
            "returned_before_approval": _RETURNED in map(_step, history),
            "ci_at_vote": {"A": row["ci_state_a"], "B": row["ci_state_b"]},
            "head_sha_a": row["head_sha_a"],
            "head_sha_b": row["head_sha_b"],
            "on_side": row["on_side"],
            "source": row["source"],
            "comment_id": row["comment_id"],
            "comment_url": row["comment_url"],
            "delivery_id": row["delivery_id"],
            "voted_at": row["voted_at"],
            "recorded_at": row["recorded_at"],
            "time_on_task_seconds": row["time_on_task_seconds"],
            "current": row["superseded_at"] is None,
            "superseded_at": row["superseded_at"],
            "superseded_by_id": row["superseded_by_id"],
            "superseded_reason": row["superseded_reason"],
        }


def _review(review) -> dict[str, Any]:
    return {
        "reviewer_id": review["reviewer_id"],
        "reviewer_login": review["reviewer_login"],
        "decision": review["decision"],
        "reason": review["reason"],
        "comment_id": review["comment_id"],
        "delivery_id": review["delivery_id"],
        "created_at": review["created_at"],
        "withdrawn_at": review["withdrawn_at"],
    }


def _ratings_only_records(connection: Connection, rows) -> Iterator[dict[str, Any]]:
    """The objects for raters who scored in a round without voting in it: no judgment, so every
    judgment field is null (or empty), and ``current`` says whether any score still stands."""
    context = _context(connection, rows)
    for row in rows:
        scores = context.ratings.get((row["round_id"], row["rater_id"]), {})
        yield {
            "kind": "ratings",
            **_shared(row, context),
            **dict.fromkeys(_JUDGMENT_ONLY),
            "rationale": "",
            "reviews": [],
            "review_history": [],
            "rated_at": row["rated_at"],
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


@dataclass(frozen=True)
class _Context:
    """What a batch's objects carry besides their own row, read in bulk."""

    tasks: dict[int, dict[str, Any]]
    rounds: dict[int, dict[str, Any]]
    models: dict[tuple[int, str], str]
    ratings: dict[tuple[int, int], dict[str, dict[str, int]]]
    line_comments: dict[tuple[int, int], list[dict[str, Any]]]


def _shared(row, context: _Context) -> dict[str, Any]:
    """The fields every object has: the task, round and rater, their scores and line comments."""
    key = (row["round_id"], row["rater_id"])
    task, round_ = context.tasks[row["task_id"]], context.rounds[row["round_id"]]
    return {
        "task_id": row["task_id"],
        "pair_id": row["pair_id"],
        "repo": task["repo"],
        "round": round_["round"],
        "round_prompt": round_["round_prompt"],
        "round_author": round_["round_author"],
        "round_head_sha_a": round_["round_head_sha_a"],
        "round_head_sha_b": round_["round_head_sha_b"],
        "round_ci": round_["round_ci"],
        "rater_id": row["rater_id"],
        "rater_login": row["rater_login"],
        "ratings": context.ratings.get(key, {}),
        "line_comments": context.line_comments.get(key, []),
        "model_a": context.models.get((row["pair_id"], "A")),
        "model_b": context.models.get((row["pair_id"], "B")),
        **task["context"],
    }


def _context(connection: Connection, rows) -> _Context:
    """For a batch of rows with task_id, pair_id, round_id and rater_id: the tasks and rounds,
    the models of the pairs, and the raters' current scores and their line comments in the rounds."""
    keys = {(row["round_id"], row["rater_id"]) for row in rows}
    models: dict[tuple[int, str], str] = {
        (pair_id, letter): model
        for pair_id, letter, model in bulk.tuples(
            connection.execute(
                select(Side.pair_id, Side.letter, Output.model)
                .join(Output, Output.id == Side.output_id)
                .where(bulk.among(connection, Side.pair_id, {row["pair_id"] for row in rows}))
            )
        )
    }
    ratings: dict[tuple[int, int], dict[str, dict[str, int]]] = defaultdict(dict)
    for round_id, rater_id, side, axis, score in bulk.tuples(
        connection.execute(
            bulk.of_pairs(
                connection,
                select(Rating.round_id, Rating.rater_id, Rating.side, Rating.axis, Rating.score),
                Rating.round_id,
                Rating.rater_id,
                keys,
            )
            .where(Rating.superseded_at.is_(None))
            .order_by(Rating.id)
        )
    ):
        ratings[(round_id, rater_id)].setdefault(side, {})[axis] = score
    line_comments: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for comment in bulk.dicts(
        connection.execute(
            bulk.of_pairs(
                connection,
                select(*bulk.plain(*LineComment.__table__.columns)),
                LineComment.round_id,
                LineComment.author_id,
                keys,
            )
            .where(LineComment.deleted_at.is_(None))
            .order_by(LineComment.id)
        )
    ):
        line_comments[(comment["round_id"], comment["author_id"])].append(
            {
                "side": comment["side"],
                "path": comment["path"],
                "line": comment["line"],
                "start_line": comment["start_line"],
                "diff_side": comment["diff_side"],
                "commit_sha": comment["commit_sha"],
                "body": comment["body"],
                "comment_id": comment["comment_id"],
                "comment_url": comment["comment_url"],
                "created_at": comment["created_at"],
                "updated_at": comment["updated_at"],
            }
        )
    return _Context(
        tasks=_tasks(connection, {row["task_id"] for row in rows}),
        rounds=_rounds(connection, {row["round_id"] for row in rows}),
        models=models,
        ratings=ratings,
        line_comments=line_comments,
    )
