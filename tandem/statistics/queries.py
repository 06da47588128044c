"""Read what the statistics need from the database and turn it into plain records.

Only current versions count: a judgment or score with ``superseded_at`` NULL (each rater's last
word in a round). By default only approved judgments count (every task needs its judgments
approved), and a rater's scores count with their judgment; ``include_unapproved`` takes every
current judgment and score. Reviews count unless withdrawn, whichever version they reviewed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import median
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, and_, cast, func, select, text
from sqlalchemy.orm import Session, aliased

from tandem.errors import TandemError
from tandem.models import Judgment, JudgmentReview, Output, Pair, Rating, Round, Side, Task
from tandem.statistics.records import Judgments, Names, Ratings, Reviews

BATCH_SIZE = 50_000


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
        metadata: list[str] = (),
        models: list[str] = (),
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


@dataclass(frozen=True)
class Records:
    judgments: Judgments
    ratings: Ratings
    reviews: Reviews


def load(session: Session, filters: Filters) -> Records:
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # The rows are streamed through a cursor, and PostgreSQL plans a cursor for its first
        # rows (nested loops); all of them are wanted, which hash joins do fastest.
        session.execute(text("SET LOCAL cursor_tuple_fraction = 1.0"))
    models = Names()
    return Records(
        judgments=Judgments.from_rows(_rows(session, _judgments(filters)), models),
        ratings=Ratings.from_rows(_rows(session, _ratings(filters)), models),
        reviews=_reviews(session, filters, postgres),
    )


def _rows(session: Session, query: Select) -> Iterator[tuple]:
    # Streamed in batches (a server-side cursor on PostgreSQL): tuples only, no ORM objects.
    result = session.execute(query, execution_options={"yield_per": BATCH_SIZE})
    try:
        for rows in result.partitions():
            yield from rows
    finally:
        result.close()


def _scoped(query: Select, round_id, written_at, filters: Filters, *, models: bool = True) -> tuple[Select, Any, Any]:
    """The query joined to the round, its task and (when ``models`` is wanted or filtered on)
    both sides' models, filtered; returns it and the model columns of side A and side B."""
    query = query.join(Round, Round.id == round_id).join(Task, Task.id == Round.task_id)
    model_a = model_b = None
    if models or filters.models is not None:
        model_a, model_b = aliased(Output), aliased(Output)
        side_a, side_b = aliased(Side), aliased(Side)
        query = (
            query.join(Pair, Pair.task_id == Task.id)
            .join(side_a, and_(side_a.pair_id == Pair.id, side_a.letter == "A"))
            .join(model_a, model_a.id == side_a.output_id)
            .join(side_b, and_(side_b.pair_id == Pair.id, side_b.letter == "B"))
            .join(model_b, model_b.id == side_b.output_id)
        )
        model_a, model_b = model_a.model, model_b.model
    conditions = list(filters.tasks)
    if filters.repo is not None:
        conditions.append(Task.repo_full_name == filters.repo)
    if filters.since is not None:
        conditions.append(written_at >= filters.since)
    if filters.until is not None:
        conditions.append(written_at < filters.until)
    if filters.round is not None:
        conditions.append(Round.number == filters.round)
    for key, value in filters.metadata.items():
        conditions.append(Task.metadata_[key].as_string() == value)
    if filters.models is not None:
        conditions += [model_a.in_(filters.models), model_b.in_(filters.models)]
    return query.where(*conditions), model_a, model_b


def _judgments(filters: Filters) -> Select:
    query, model_a, model_b = _scoped(select(Judgment.task_id).select_from(Judgment), Judgment.round_id, Judgment.voted_at, filters)
    query = query.add_columns(
        Round.number,
        Judgment.rater_login,
        model_a,
        model_b,
        Judgment.verdict,
        Judgment.strength,
        Judgment.time_on_task_seconds,
    ).where(Judgment.superseded_at.is_(None))
    if not filters.include_unapproved:
        query = query.where(Judgment.review_state == "approved")
    return query


def _ratings(filters: Filters) -> Select:
    query, model_a, model_b = _scoped(select(Rating.task_id).select_from(Rating), Rating.round_id, Rating.created_at, filters)
    query = query.add_columns(
        Round.number, Rating.rater_login, Rating.side, Rating.axis, Rating.score, model_a, model_b
    ).where(Rating.superseded_at.is_(None))
    if not filters.include_unapproved:
        vote = aliased(Judgment)
        its_vote = and_(vote.round_id == Rating.round_id, vote.rater_id == Rating.rater_id, vote.superseded_at.is_(None))
        query = query.join(vote, its_vote).where(vote.review_state == "approved")
    return query


def seconds_between(start, end, postgres: bool) -> ColumnElement[float]:
    """end - start in seconds, computed by the database (no datetime per row in Python)."""
    if postgres:
        return cast(func.extract("epoch", end - start), Float)  # numeric otherwise: a Decimal
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _reviews(session: Session, filters: Filters, postgres: bool) -> Reviews:
    """Decisions counted by the database, and each reviewer's median turnaround: computed by
    PostgreSQL, from the turnarounds in Python on SQLite (which has no percentiles)."""
    turnaround = seconds_between(Judgment.voted_at, JudgmentReview.created_at, postgres)

    def scoped(*columns) -> Select:
        query, _, _ = _scoped(
            select(*columns).select_from(JudgmentReview).join(Judgment, Judgment.id == JudgmentReview.judgment_id),
            Judgment.round_id,
            Judgment.voted_at,
            filters,
            models=False,
        )
        return query.where(JudgmentReview.withdrawn_at.is_(None))

    counts = session.execute(
        scoped(JudgmentReview.reviewer_login, Judgment.rater_login, JudgmentReview.decision, func.count()).group_by(
            JudgmentReview.reviewer_login, Judgment.rater_login, JudgmentReview.decision
        )
    ).all()
    if postgres:
        medians = dict(
            session.execute(
                scoped(JudgmentReview.reviewer_login, func.percentile_cont(0.5).within_group(turnaround)).group_by(
                    JudgmentReview.reviewer_login
                )
            ).all()
        )
    else:
        seconds: dict[str, list[float]] = defaultdict(list)
        for reviewer, value in _rows(session, scoped(JudgmentReview.reviewer_login, turnaround)):
            seconds[reviewer].append(value)
        medians = {reviewer: median(values) for reviewer, values in seconds.items()}
    return Reviews.from_rows(counts, medians)
