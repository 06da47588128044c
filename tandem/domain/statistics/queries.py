"""Read what the statistics need from the database and turn it into plain records.

Only current versions count: a judgment or score with ``superseded_at`` NULL (each rater's last
word in a round). By default only approved judgments count (every task needs its judgments
approved), and a rater's scores count with their judgment; ``include_unapproved`` takes every
current judgment and score. Reviews count unless withdrawn, whichever version they reviewed.

A million judgments must load in seconds, so no row becomes a Python object: the database codes
every name as a number (models, verdicts, strengths, axes; raters by id) and the rows arrive as
numpy columns (``columns``). A pair's models and its task's gold answer are read once per round
and given to the judgments and scores of that round by numpy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from statistics import median
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Float, Select, SQLColumnExpression, and_, case, cast, func, literal, select, text
from sqlalchemy.orm import Session, aliased

from tandem.domain.statistics import columns
from tandem.domain.statistics.columns import integer, real
from tandem.domain.statistics.records import (
    NEITHER,
    NO_GOLD,
    STRENGTHS,
    TIE,
    VERDICTS,
    A,
    B,
    Judgments,
    Ratings,
    Reviews,
)
from tandem.domain.vocabulary import ReviewState
from tandem.infra.errors import TandemError
from tandem.infra.models import Judgment, JudgmentReview, Output, Pair, Rating, Round, Side, Task

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


@dataclass(frozen=True)
class Records:
    judgments: Judgments
    ratings: Ratings
    reviews: Reviews


def load(session: Session, filters: Filters) -> Records:
    """The records the filters select. Names (models, axes, verdicts, logins) are coded as
    numbers by the database, so rows arrive as numeric columns (``columns``)."""
    if session.get_bind().dialect.name == "postgresql":
        # Each query runs once over many rows: compiling it to machine code (JIT) costs more
        # than it saves.
        session.execute(text("SET LOCAL jit = off"))
    models = sorted(session.scalars(select(Output.model).distinct()))
    rounds = _Rounds.load(session, filters, models)
    return Records(
        judgments=_judgments(session, filters, rounds, models),
        ratings=_ratings(session, filters, rounds, models),
        reviews=_reviews(session, filters, session.get_bind().dialect.name == "postgresql"),
    )


def _coded(column: SQLColumnExpression[Any], names: Sequence[str], missing: int = -1) -> ColumnElement[int]:
    """The index of the column's value in ``names`` (``missing`` for NULL or another value)."""
    if not names:
        return literal(missing)
    return case({name: code for code, name in enumerate(names)}, value=column, else_=missing)


def _gold(model_a, model_b) -> ColumnElement[int]:
    """The verdict a gold task expects, in the letters of the pair (NO_GOLD if not gold)."""
    preferred = Task.gold["preferred"].as_string()
    return case(
        (preferred.is_(None), NO_GOLD),
        (preferred == model_a, A),
        (preferred == model_b, B),
        (preferred == VERDICTS[TIE], TIE),
        (preferred == VERDICTS[NEITHER], NEITHER),
        else_=NO_GOLD,
    )


@dataclass(frozen=True)
class _Rounds:
    """The rounds the filters select, by id: their task, number, models (codes) and the verdict
    their task's gold expects. Judgments and scores get their models from here, so the joins
    from a round to its pair's models run once per round, not once per judgment and score."""

    id: np.ndarray  # sorted
    task_id: np.ndarray
    number: np.ndarray
    model_a: np.ndarray
    model_b: np.ndarray
    gold: np.ndarray

    @classmethod
    def load(cls, session: Session, filters: Filters, models: list[str]) -> _Rounds:
        # Scoped from an alias of Round: the scope joins Round itself. The times filter votes
        # and scores, not rounds.
        round_ = aliased(Round)
        query, model_a, model_b = _scoped(
            select().select_from(round_), round_.id, round_.created_at, replace(filters, since=None, until=None)
        )
        query = query.add_columns(
            *map(
                integer,
                (
                    round_.id,
                    round_.task_id,
                    round_.number,
                    _coded(model_a, models),
                    _coded(model_b, models),
                    _gold(model_a, model_b),
                ),
            )
        ).order_by(round_.id)
        return cls(*columns.fetch(session, query, [columns.INT] * 6))

    def select(self, round_ids: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
        """The rows whose round is here (the others the filters leave out): each one's index
        here, and its values."""
        if len(self.id) == 0:
            return np.zeros(0, dtype=np.int64), *(value[:0] for value in values)
        index = np.minimum(np.searchsorted(self.id, round_ids), len(self.id) - 1)
        kept = self.id[index] == round_ids
        return index[kept], *(value[kept] for value in values)


def _units(rounds: _Rounds, index: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Units (task id, round number) numbered by round, and each row's unit."""
    present, unit = np.unique(index, return_inverse=True)
    return list(zip(rounds.task_id[present].tolist(), rounds.number[present].tolist(), strict=True)), unit


def _raters(session: Session, table, rater_ids: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Raters numbered by id (their latest login names them), and each row's rater."""
    ids, rater = np.unique(rater_ids, return_inverse=True)
    latest = select(func.max(table.id)).group_by(table.rater_id)
    logins: dict[int, str] = dict(
        session.execute(select(table.rater_id, table.rater_login).where(table.id.in_(latest))).all()
    )
    return [logins[i] for i in ids.tolist()], rater


def _judgments(session: Session, filters: Filters, rounds: _Rounds, models: list[str]) -> Judgments:
    # The models are the rounds' (filtered there): no joins to them here.
    unfiltered = replace(filters, models=None)
    query, _, _ = _scoped(
        select().select_from(Judgment), Judgment.round_id, Judgment.voted_at, unfiltered, models=False
    )
    coded = (_coded(Judgment.verdict, VERDICTS), _coded(Judgment.strength, STRENGTHS))
    query = query.add_columns(
        *map(integer, (Judgment.round_id, Judgment.rater_id, *coded)),
        real(func.coalesce(Judgment.time_on_task_seconds, -1)),
    ).where(Judgment.superseded_at.is_(None))
    if not filters.include_unapproved:
        query = query.where(Judgment.review_state == ReviewState.APPROVED)
    round_id, *values = columns.fetch(session, query, [columns.INT] * 4 + [columns.FLOAT])
    index, rater_id, verdict, strength, seconds = rounds.select(round_id, *values)
    units, unit = _units(rounds, index)
    raters, rater = _raters(session, Judgment, rater_id)
    return Judgments(
        units=units,
        raters=raters,
        models=models,
        unit=unit,
        rater=rater,
        model_a=rounds.model_a[index],
        model_b=rounds.model_b[index],
        verdict=verdict.astype(np.int8),
        strength=(strength + 1).astype(np.int8),
        seconds=np.where(seconds < 0, np.nan, seconds),
        gold=rounds.gold[index].astype(np.int8),
    )


def _ratings(session: Session, filters: Filters, rounds: _Rounds, models: list[str]) -> Ratings:
    unfiltered = replace(filters, models=None)
    query, _, _ = _scoped(select().select_from(Rating), Rating.round_id, Rating.created_at, unfiltered, models=False)
    axes = sorted(session.scalars(select(Rating.axis).distinct()))
    coded = (case((Rating.side == "B", 1), else_=0), _coded(Rating.axis, axes))
    query = query.add_columns(
        *map(integer, (Rating.round_id, Rating.rater_id, *coded, Rating.score)),
    ).where(Rating.superseded_at.is_(None))
    if not filters.include_unapproved:
        vote = aliased(Judgment)
        its_vote = and_(
            vote.round_id == Rating.round_id, vote.rater_id == Rating.rater_id, vote.superseded_at.is_(None)
        )
        query = query.join(vote, its_vote).where(vote.review_state == ReviewState.APPROVED)
    round_id, *values = columns.fetch(session, query, [columns.INT] * 5)
    index, rater_id, side, axis, score = rounds.select(round_id, *values)
    _, unit = _units(rounds, index)
    raters, rater = _raters(session, Rating, rater_id)
    return Ratings(
        axes=axes,
        raters=raters,
        models=models,
        unit=unit,
        rater=rater,
        side=side.astype(np.int8),
        axis=axis,
        score=score.astype(float),
        model=np.where(side == 0, rounds.model_a[index], rounds.model_b[index]),
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
    conditions = list(filters.tasks)
    model_a = model_b = None
    if models or filters.models is not None:
        output_a, output_b = aliased(Output), aliased(Output)
        side_a, side_b = aliased(Side), aliased(Side)
        query = (
            query.join(Pair, Pair.task_id == Task.id)
            .join(side_a, and_(side_a.pair_id == Pair.id, side_a.letter == "A"))
            .join(output_a, output_a.id == side_a.output_id)
            .join(side_b, and_(side_b.pair_id == Pair.id, side_b.letter == "B"))
            .join(output_b, output_b.id == side_b.output_id)
        )
        model_a, model_b = output_a.model, output_b.model
        if filters.models is not None:
            conditions += [model_a.in_(filters.models), model_b.in_(filters.models)]
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
    return query.where(*conditions), model_a, model_b


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
