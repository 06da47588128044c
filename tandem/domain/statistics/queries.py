"""Read what the statistics need from the database and turn it into plain records.

Only current versions count: a judgment or score with ``superseded_at`` NULL (each rater's last
word in a round). By default only approved judgments count (every task needs its judgments
approved), and a rater's scores count with their judgment; ``include_unapproved`` takes every
current judgment and score. Reviews count unless withdrawn, whichever version they reviewed.

A million judgments must load in seconds, so no row becomes a Python object: the database codes
every name as a number (models, verdicts, strengths, axes; raters by id) and the rows arrive as
numpy columns (``columns``). The filters on rounds, tasks and models are applied once per round
(``_Rounds``: a pair's models and its task's gold answer come from there too); judgments, scores
and reviews are read from their own tables, only their times filtered by the database, and kept
by their round with numpy. A score counts with its rater's vote: matched in numpy too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Float, SQLColumnExpression, and_, case, cast, func, literal, select, text
from sqlalchemy.orm import Session, aliased

from tandem.domain.statistics import columns
from tandem.domain.statistics.columns import integer, real
from tandem.domain.statistics.records import (
    CI_STATES,
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
    numbered,
)
from tandem.domain.vocabulary import ReviewDecision, ReviewState
from tandem.infra.errors import TandemError
from tandem.infra.models import Judgment, JudgmentReview, Output, Pair, Rating, Round, Side, Task


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
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # Each query runs once over many rows: compiling it to machine code (JIT) costs more
        # than it saves.
        session.execute(text("SET LOCAL jit = off"))
    models = sorted(session.scalars(select(Output.model).distinct()))
    rounds = _Rounds.load(session, filters, models)
    logins = _logins(session)
    judgments, votes = _judgments(session, filters, rounds, models, logins)
    return Records(
        judgments=judgments,
        ratings=_ratings(session, filters, rounds, models, votes, logins),
        reviews=_reviews(session, filters, rounds, logins, postgres),
    )


def _coded(column: SQLColumnExpression[Any], names: Sequence[str], missing: int = -1) -> ColumnElement[int]:
    """The index of the column's value in ``names`` (``missing`` for NULL or another value)."""
    if not names:
        return literal(missing)
    return case({name: code for code, name in enumerate(names)}, value=column, else_=missing)


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


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


def _in_time(written_at, filters: Filters) -> list[ColumnElement[bool]]:
    """Conditions that ``written_at`` is within since/until."""
    conditions = []
    if filters.since is not None:
        conditions.append(written_at >= filters.since)
    if filters.until is not None:
        conditions.append(written_at < filters.until)
    return conditions


@dataclass(frozen=True)
class _Rounds:
    """The rounds the filters select, by id: their task, number, models (codes) and the verdict
    their task's gold expects. Every filter but the times is on the round, its task or its
    pair's models, so judgments, scores and reviews are read from their own tables alone and
    kept by their round here (``select``): the joins run once per round, not once per row."""

    id: np.ndarray  # sorted
    task_id: np.ndarray
    number: np.ndarray
    model_a: np.ndarray
    model_b: np.ndarray
    gold: np.ndarray

    @classmethod
    def load(cls, session: Session, filters: Filters, models: list[str]) -> _Rounds:
        output_a, output_b = aliased(Output), aliased(Output)
        side_a, side_b = aliased(Side), aliased(Side)
        model_a, model_b = output_a.model, output_b.model
        query = (
            select(
                *map(
                    integer,
                    (
                        Round.id,
                        Round.task_id,
                        Round.number,
                        _coded(model_a, models),
                        _coded(model_b, models),
                        _gold(model_a, model_b),
                    ),
                )
            )
            .select_from(Round)
            .join(Task, Task.id == Round.task_id)
            .join(Pair, Pair.task_id == Task.id)
            .join(side_a, and_(side_a.pair_id == Pair.id, side_a.letter == "A"))
            .join(output_a, output_a.id == side_a.output_id)
            .join(side_b, and_(side_b.pair_id == Pair.id, side_b.letter == "B"))
            .join(output_b, output_b.id == side_b.output_id)
            .where(*filters.tasks)
        )
        if filters.models is not None:
            query = query.where(model_a.in_(filters.models), model_b.in_(filters.models))
        if filters.repo is not None:
            query = query.where(Task.repo_full_name == filters.repo)
        if filters.round is not None:
            query = query.where(Round.number == filters.round)
        for key, value in filters.metadata.items():
            query = query.where(Task.metadata_[key].as_string() == value)
        found = columns.fetch(session, query, [columns.INT] * 6)
        order = np.argsort(found[0])  # numpy sorts in memory; the database would spill to disk
        return cls(*(column[order] for column in found))

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
    # Round indices are below len(rounds): counted, not sorted.
    seen = np.bincount(index, minlength=len(rounds.id)) > 0
    present, unit = np.flatnonzero(seen), (np.cumsum(seen) - 1)[index]
    return list(zip(rounds.task_id[present].tolist(), rounds.number[present].tolist(), strict=True)), unit


def _logins(session: Session) -> dict[int, str]:
    """Each rater's login by id: that of their latest vote (the login may have changed)."""
    latest = select(func.max(Judgment.id)).group_by(Judgment.rater_id)
    return dict(session.execute(select(Judgment.rater_id, Judgment.rater_login).where(Judgment.id.in_(latest))).all())


def _raters(session: Session, logins: dict[int, str], rater_ids: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Raters numbered by id, named by ``logins``, and each row's rater."""
    ids, rater = numbered(rater_ids)
    if unnamed := set(ids.tolist()) - set(logins):  # scored without ever voting: named by their latest score
        latest = select(func.max(Rating.id)).where(Rating.rater_id.in_(unnamed)).group_by(Rating.rater_id)
        logins |= dict(session.execute(select(Rating.rater_id, Rating.rater_login).where(Rating.id.in_(latest))).all())
    return [logins[i] for i in ids.tolist()], rater


@dataclass(frozen=True)
class _Votes:
    """Current votes, whenever cast: each one's round (index in _Rounds) and rater id."""

    round: np.ndarray
    rater_id: np.ndarray

    def cast(self, round_index: np.ndarray, rater_id: np.ndarray) -> np.ndarray:
        """Whether each (round index, rater id) is one of these votes."""
        # Rater ids are coded 0..n first, so a (round, rater) is one integer.
        ids, codes = numbered(np.concatenate([self.rater_id, rater_id]))
        ours, theirs = codes[: len(self.rater_id)], codes[len(self.rater_id) :]
        return np.isin(round_index * len(ids) + theirs, self.round * len(ids) + ours)


def _judgments(
    session: Session, filters: Filters, rounds: _Rounds, models: list[str], logins: dict[int, str]
) -> tuple[Judgments, _Votes]:
    """The current judgments the filters select; and the current votes whose scores count
    (approved, unless unapproved ones count too) whenever cast: the times filter scores by
    when they were written, not their votes."""
    in_time = _in_time(Judgment.voted_at, filters)
    coded = (
        _coded(Judgment.verdict, VERDICTS),
        _coded(Judgment.strength, STRENGTHS),
        _coded(Judgment.ci_state_a, CI_STATES),
        _coded(Judgment.ci_state_b, CI_STATES),
        literal(1) if filters.include_unapproved else _flag(Judgment.review_state == ReviewState.APPROVED),
        _flag(and_(*in_time)) if in_time else literal(1),
    )
    query = select(
        *map(integer, (Judgment.round_id, Judgment.rater_id, *coded)),
        real(func.coalesce(Judgment.time_on_task_seconds, -1)),
    ).where(Judgment.superseded_at.is_(None))
    round_id, *values = columns.fetch(session, query, [columns.INT] * 2 + [columns.SMALL] * 6 + [columns.FLOAT])
    index, rater_id, verdict, strength, ci_a, ci_b, counts, written, seconds = rounds.select(round_id, *values)
    votes = _Votes(round=index[counts == 1], rater_id=rater_id[counts == 1])
    kept = (counts == 1) & (written == 1)
    index = index[kept]
    units, unit = _units(rounds, index)
    raters, rater = _raters(session, logins, rater_id[kept])
    judgments = Judgments(
        units=units,
        raters=raters,
        models=models,
        unit=unit,
        rater=rater,
        model_a=rounds.model_a[index],
        model_b=rounds.model_b[index],
        verdict=verdict[kept].astype(np.int8),
        strength=(strength[kept] + 1).astype(np.int8),
        seconds=np.where(seconds[kept] < 0, np.nan, seconds[kept]),
        gold=rounds.gold[index].astype(np.int8),
        ci_a=ci_a[kept].astype(np.int8),
        ci_b=ci_b[kept].astype(np.int8),
    )
    return judgments, votes


def _ratings(
    session: Session, filters: Filters, rounds: _Rounds, models: list[str], votes: _Votes, logins: dict[int, str]
) -> Ratings:
    """The current scores the filters select, of the votes whose scores count."""
    axes = sorted(session.scalars(select(Rating.axis).distinct()))
    query = select(
        *map(
            integer,
            (Rating.round_id, Rating.rater_id, _flag(Rating.side == "B"), _coded(Rating.axis, axes), Rating.score),
        )
    ).where(Rating.superseded_at.is_(None), *_in_time(Rating.created_at, filters))
    kinds = [columns.INT, columns.INT, columns.SMALL, columns.INT, columns.INT]
    round_id, *values = columns.fetch(session, query, kinds)
    index, rater_id, side, axis, score = rounds.select(round_id, *values)
    kept = votes.cast(index, rater_id)
    index, rater_id, side, axis, score = index[kept], rater_id[kept], side[kept], axis[kept], score[kept]
    _, unit = _units(rounds, index)
    raters, rater = _raters(session, logins, rater_id)
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


def seconds_between(start, end, postgres: bool) -> ColumnElement[float]:
    """end - start in seconds, computed by the database (no datetime per row in Python)."""
    if postgres:
        return cast(func.extract("epoch", end - start), Float)  # numeric otherwise: a Decimal
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _reviews(session: Session, filters: Filters, rounds: _Rounds, logins: dict[int, str], postgres: bool) -> Reviews:
    """Reviews not withdrawn of any version of the judgments the filters select: decisions per
    reviewer and rater, and each reviewer's median turnaround from the vote to the review."""
    query = (
        select(
            *map(
                integer,
                (
                    Judgment.round_id,
                    Judgment.rater_id,
                    JudgmentReview.reviewer_id,
                    _flag(JudgmentReview.decision == ReviewDecision.APPROVED),
                ),
            ),
            seconds_between(Judgment.voted_at, JudgmentReview.created_at, postgres),
        )
        .select_from(JudgmentReview)
        .join(Judgment, Judgment.id == JudgmentReview.judgment_id)
        .where(JudgmentReview.withdrawn_at.is_(None), *_in_time(Judgment.voted_at, filters))
    )
    round_id, *values = columns.fetch(session, query, [columns.INT] * 3 + [columns.SMALL, columns.FLOAT])
    _, rater_id, reviewer_id, approved, turnaround = rounds.select(round_id, *values)
    raters, rater = _raters(session, logins, rater_id)
    reviewer_ids, reviewer = numbered(reviewer_id)
    latest = select(func.max(JudgmentReview.id)).group_by(JudgmentReview.reviewer_id)
    logins: dict[int, str] = dict(
        session.execute(
            select(JudgmentReview.reviewer_id, JudgmentReview.reviewer_login).where(JudgmentReview.id.in_(latest))
        ).all()
    )
    reviewers = [logins[i] for i in reviewer_ids.tolist()]
    # One row per reviewer, rater and decision, with its count.
    kinds, count = np.unique((reviewer * len(raters) + rater) * 2 + approved, return_counts=True)
    order = np.argsort(reviewer, kind="stable")
    bounds = np.searchsorted(reviewer[order], np.arange(len(reviewers) + 1))
    return Reviews(
        reviewers=reviewers,
        raters=raters,
        reviewer=kinds // 2 // max(len(raters), 1),
        rater=kinds // 2 % max(len(raters), 1),
        approved=kinds % 2 == 1,
        count=count,
        turnaround={
            login: float(np.median(turnaround[order[bounds[code] : bounds[code + 1]]]))
            for code, login in enumerate(reviewers)
        },
    )
