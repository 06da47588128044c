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
by their round with numpy; a score is matched to its rater's vote, and a review to its judgment,
by numpy too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Float, Select, SQLColumnExpression, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session, aliased

from tandem.domain.statistics import columns
from tandem.domain.statistics.columns import integer, real
from tandem.domain.statistics.filters import Filters
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
)
from tandem.domain.vocabulary import ReviewDecision, ReviewState
from tandem.infra.models import Judgment, JudgmentReview, Output, Pair, Rating, Round, Side, Task


@dataclass(frozen=True)
class Records:
    judgments: Judgments
    ratings: Ratings
    reviews: Reviews


def load(session: Session, filters: Filters) -> Records:
    """The records the filters select. Names (models, axes, verdicts, logins) are coded as
    numbers by the database, so rows arrive as numeric columns (``columns``), the four big reads
    at once."""
    postgres = session.get_bind().dialect.name == "postgresql"
    with columns.Reader(session) as reader:
        # Read after the reader's snapshot is taken, so they know every model, axis and rater in it.
        models = sorted(session.scalars(select(Output.model).distinct()))
        axes = sorted(session.scalars(select(Rating.axis).distinct()))
        coded = _judgment_codes(filters)
        rounds = reader.fetch(_Rounds.query(filters, models), [columns.INT] * 6)
        votes = reader.fetch(_judgment_query(filters, coded, postgres), [columns.INT] * 4 + [columns.FLOAT] * 2)
        scores = reader.fetch(_rating_query(filters, axes), [columns.INT] * 2 + [columns.SMALL] + [columns.INT] * 2)
        reviews = reader.fetch(_review_query(postgres), [columns.INT, columns.INT, columns.SMALL, columns.FLOAT])
        raters = _People(
            session,
            (Judgment.id, Judgment.rater_id, Judgment.rater_login),
            (Rating.id, Rating.rater_id, Rating.rater_login),
        )
        selected = _Rounds.of(rounds.result())
        judgments, cast_votes, versions = _judgments(votes.result(), len(coded), selected, models, raters)
        return Records(
            judgments=judgments,
            ratings=_ratings(scores.result(), filters, selected, models, axes, cast_votes, raters),
            reviews=_reviews(session, reviews.result(), versions, raters),
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

    @staticmethod
    def query(filters: Filters, models: list[str]) -> Select:
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
        return query

    @classmethod
    def of(cls, found: list[np.ndarray]) -> _Rounds:
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


class _People:
    """Raters or reviewers by id, each named by the login of their latest row in the first of
    ``sources`` that has one (a login may change). Rows are numbered by a binary search in the
    few ids, not by sorting a million of them (``np.unique``)."""

    def __init__(self, session: Session, *sources: tuple[Any, Any, Any]) -> None:
        """``sources``: (row id, person id, login) columns, the first read now, the others for
        anyone not found there (a rater who scored without voting)."""
        self.session, self.sources = session, sources
        self.ids, self.logins = np.zeros(0, dtype=np.int64), list[str]()
        self._name(sources[0], None)

    def _name(self, source: tuple[Any, Any, Any], only: set[int] | None) -> None:
        row, person, login = source
        latest = select(func.max(row)).group_by(person)
        if only is not None:
            latest = latest.where(person.in_(only))
        logins = dict(zip(self.ids.tolist(), self.logins, strict=True))
        logins |= dict(self.session.execute(select(person, login).where(row.in_(latest))).all())
        self.ids = np.array(sorted(logins), dtype=np.int64)
        self.logins = [logins[i] for i in self.ids.tolist()]

    def codes(self, ids: np.ndarray) -> np.ndarray:
        """Each row's index in ``ids``."""
        if (found := self._found(ids)) is None:
            unnamed = set(ids.tolist()) - set(self.ids.tolist())
            for source in self.sources[1:]:
                self._name(source, unnamed)
            if (found := self._found(ids)) is None:
                raise ValueError(f"no login for the ids {sorted(unnamed)}")
        return found

    def _found(self, ids: np.ndarray) -> np.ndarray | None:
        found = np.minimum(np.searchsorted(self.ids, ids), max(len(self.ids) - 1, 0))
        if len(ids) and (len(self.ids) == 0 or (self.ids[found] != ids).any()):
            return None
        return found

    def numbered(self, ids: np.ndarray) -> tuple[list[str], np.ndarray]:
        """The people of these rows, numbered from 0, and each row's number."""
        seen = np.bincount(codes := self.codes(ids), minlength=len(self.ids)) > 0
        return [self.logins[i] for i in np.flatnonzero(seen)], (np.cumsum(seen) - 1)[codes]


@dataclass(frozen=True)
class _Votes:
    """Current votes, whenever cast: each one's round (index in _Rounds) and rater (index in
    ``ids``)."""

    ids: np.ndarray
    round: np.ndarray
    rater: np.ndarray

    def cast(self, round_index: np.ndarray, rater_id: np.ndarray) -> np.ndarray:
        """Whether each (round index, rater id) is one of these votes."""
        if len(self.round) == 0:
            return np.zeros(len(rater_id), dtype=bool)
        rater = np.minimum(np.searchsorted(self.ids, rater_id), len(self.ids) - 1)
        # A (round, rater) as one number, looked up in the votes' sorted (np.isin sorts both).
        keys = np.where(self.ids[rater] == rater_id, round_index * len(self.ids) + rater, -1)
        ours = np.sort(self.round * len(self.ids) + self.rater)
        return ours[np.minimum(np.searchsorted(ours, keys), len(ours) - 1)] == keys


@dataclass(frozen=True)
class _Versions:
    """Every version of the judgments in the selected rounds, by id, for their reviews: each
    one's round (index in _Rounds), rater id, whether the times select it, and when it was cast
    (seconds since the epoch)."""

    id: np.ndarray  # sorted
    round: np.ndarray
    rater_id: np.ndarray
    written: np.ndarray
    voted_at: np.ndarray


def _judgment_codes(filters: Filters) -> tuple[ColumnElement[int], ...]:
    in_time = _in_time(Judgment.voted_at, filters)
    return (
        _flag(Judgment.superseded_at.is_(None)),
        _coded(Judgment.verdict, VERDICTS),
        _coded(Judgment.strength, STRENGTHS),
        _coded(Judgment.ci_state_a, CI_STATES),
        _coded(Judgment.ci_state_b, CI_STATES),
        literal(1) if filters.include_unapproved else _flag(Judgment.review_state == ReviewState.APPROVED),
        _flag(and_(*in_time)) if in_time else literal(1),
    )


def _judgment_query(filters: Filters, coded: tuple[ColumnElement[int], ...], postgres: bool) -> Select:
    """Every version of every judgment: its round, id, rater, ``coded`` packed, time on task
    and when it was cast."""
    return select(
        *map(integer, (Judgment.round_id, Judgment.id, Judgment.rater_id)),
        columns.packed(*coded),
        real(func.coalesce(Judgment.time_on_task_seconds, -1)),
        epoch(Judgment.voted_at, postgres),
    )


def _judgments(
    found: list[np.ndarray], codes: int, rounds: _Rounds, models: list[str], raters: _People
) -> tuple[Judgments, _Votes, _Versions]:
    """The current judgments the filters select; the current votes whose scores count
    (approved, unless unapproved ones count too) whenever cast: the times filter scores by when
    they were written, not their votes; and every version, for the reviews."""
    round_id, *values = found
    index, id_, rater_id, packed, seconds, voted_at = rounds.select(round_id, *values)
    current, verdict, strength, ci_a, ci_b, counts, written = columns.unpacked(packed, codes)
    order = np.argsort(id_)
    versions = _Versions(id_[order], index[order], rater_id[order], written[order], voted_at[order])
    voting = (current == 1) & (counts == 1)
    votes = _Votes(raters.ids, index[voting], raters.codes(rater_id[voting]))
    kept = voting & (written == 1)
    index = index[kept]
    units, unit = _units(rounds, index)
    names, rater = raters.numbered(rater_id[kept])
    judgments = Judgments(
        units=units,
        raters=names,
        models=models,
        unit=unit,
        rater=rater,
        model_a=rounds.model_a[index],
        model_b=rounds.model_b[index],
        verdict=verdict[kept],
        strength=strength[kept] + 1,
        seconds=np.where(seconds[kept] < 0, np.nan, seconds[kept]),
        gold=rounds.gold[index].astype(np.int8),
        ci_a=ci_a[kept],
        ci_b=ci_b[kept],
    )
    return judgments, votes, versions


def _rating_query(filters: Filters, axes: list[str]) -> Select:
    return select(
        *map(
            integer,
            (Rating.round_id, Rating.rater_id, _flag(Rating.side == "B"), _coded(Rating.axis, axes), Rating.score),
        )
    ).where(Rating.superseded_at.is_(None), *_in_time(Rating.created_at, filters))


def _ratings(
    found: list[np.ndarray],
    filters: Filters,
    rounds: _Rounds,
    models: list[str],
    axes: list[str],
    votes: _Votes,
    raters: _People,
) -> Ratings:
    """The current scores the filters select: of approved votes, unless unapproved ones count."""
    round_id, *values = found
    index, rater_id, side, axis, score = rounds.select(round_id, *values)
    # Unapproved votes count too: so do scores without any vote.
    kept = np.ones(len(index), dtype=bool) if filters.include_unapproved else votes.cast(index, rater_id)
    index, rater_id, side, axis, score = index[kept], rater_id[kept], side[kept], axis[kept], score[kept]
    _, unit = _units(rounds, index)
    names, rater = raters.numbered(rater_id)
    return Ratings(
        axes=axes,
        raters=names,
        models=models,
        unit=unit,
        rater=rater,
        side=side,
        axis=axis,
        score=score.astype(float),
        model=np.where(side == 0, rounds.model_a[index], rounds.model_b[index]),
    )


def seconds_between(start, end, postgres: bool) -> ColumnElement[float]:
    """end - start in seconds, computed by the database (no datetime per row in Python)."""
    if postgres:
        return cast(func.extract("epoch", end - start), Float)  # numeric otherwise: a Decimal
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def epoch(moment, postgres: bool) -> ColumnElement[float]:
    """Seconds since 1970, computed by the database."""
    if postgres:
        return func.date_part("epoch", moment)  # a double (EXTRACT gives a slower numeric)
    return (func.julianday(moment) - 2440587.5) * 86400.0


def _review_query(postgres: bool) -> Select:
    return select(
        *map(
            integer,
            (
                JudgmentReview.judgment_id,
                JudgmentReview.reviewer_id,
                _flag(JudgmentReview.decision == ReviewDecision.APPROVED),
            ),
        ),
        epoch(JudgmentReview.created_at, postgres),
    ).where(JudgmentReview.withdrawn_at.is_(None))


def _reviews(session: Session, found: list[np.ndarray], versions: _Versions, raters: _People) -> Reviews:
    """Reviews not withdrawn of any version of the judgments the filters select: decisions per
    reviewer and rater, and each reviewer's median turnaround from the vote to the review.
    Matched to their judgment by numpy (a hash join of a million rows costs the database more)."""
    judgment_id, reviewer_id, approved, created_at = found
    version = np.minimum(np.searchsorted(versions.id, judgment_id), max(len(versions.id) - 1, 0))
    kept = (versions.id[version] == judgment_id) & (versions.written[version] == 1) if len(versions.id) else version < 0
    version, reviewer_id, approved = version[kept], reviewer_id[kept], approved[kept]
    turnaround = created_at[kept] - versions.voted_at[version]
    names, rater = raters.numbered(versions.rater_id[version])
    reviewers, reviewer = _People(
        session, (JudgmentReview.id, JudgmentReview.reviewer_id, JudgmentReview.reviewer_login)
    ).numbered(reviewer_id)
    # One row per reviewer, rater and decision, with its count.
    per_kind = np.bincount((reviewer * len(names) + rater) * 2 + approved, minlength=len(reviewers) * len(names) * 2)
    kinds = np.flatnonzero(per_kind)
    count = per_kind[kinds]
    order = np.argsort(reviewer, kind="stable")
    bounds = np.searchsorted(reviewer[order], np.arange(len(reviewers) + 1))
    return Reviews(
        reviewers=reviewers,
        raters=names,
        reviewer=kinds // 2 // max(len(names), 1),
        rater=kinds // 2 % max(len(names), 1),
        approved=kinds % 2 == 1,
        count=count,
        turnaround={
            login: float(np.median(turnaround[order[bounds[code] : bounds[code + 1]]]))
            for code, login in enumerate(reviewers)
        },
    )
