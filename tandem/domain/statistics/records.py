"""The plain records the statistics work on: current judgments, ratings and reviews as columns.

Columns (numpy arrays, names encoded as small integers) rather than one object per row: a
million judgments fit in a few tens of megabytes and every statistic is a vectorized pass.
Built from plain tuples by ``from_rows``, so the maths can be tested without a database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np

from tandem.domain.ci import CiState
from tandem.domain.vocabulary import ReviewDecision, Strength, Verdict

VERDICTS = tuple(Verdict)
A, B, TIE, NEITHER = range(4)
STRENGTHS = tuple(Strength)  # 1, 2, 3; 0 is no strength (a tie or neither)
NO_GOLD = -1
CI_STATES = tuple(CiState)
NO_CI = -1  # no CI had reported on the side when the vote was cast
CHUNK = 50_000


def numbered(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)``, for many values of few kinds: each value's
    number by a binary search in the distinct values rather than by sorting all the values."""
    distinct = np.unique(values)
    return distinct, np.searchsorted(distinct, values)


class Names:
    """Names (raters, models, units) numbered in the order first seen."""

    def __init__(self) -> None:
        self.index: dict = {}

    def codes(self, values: Iterable) -> np.ndarray:
        index = self.index
        return np.fromiter((index.setdefault(value, len(index)) for value in values), dtype=np.int64)

    @property
    def names(self) -> list:
        return list(self.index)


@dataclass(frozen=True)
class Judgments:
    """One row per current judgment. A unit is a pair in a round, (task id, round number): every
    rater of a unit saw the same two sides under the same letters."""

    units: list[tuple[int, int]]
    raters: list[str]
    models: list[str]
    unit: np.ndarray
    rater: np.ndarray
    model_a: np.ndarray  # the model shown as Option A
    model_b: np.ndarray
    verdict: np.ndarray  # index in VERDICTS
    strength: np.ndarray  # 0 none, else 1 + index in STRENGTHS
    seconds: np.ndarray  # time on task; nan where unknown
    # The verdict a gold task expects, in this judgment's letters (index in VERDICTS), or NO_GOLD.
    gold: np.ndarray
    # Each side's CI state when the vote was cast (index in CI_STATES), or NO_CI.
    ci_a: np.ndarray
    ci_b: np.ndarray

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence], models: Names | None = None) -> Judgments:
        """Rows of (task_id, round, rater, model_a, model_b, verdict, strength, seconds[, the gold
        verdict[, side A's CI state, side B's]])."""
        units, raters, models = Names(), Names(), models or Names()
        verdicts = {name: code for code, name in enumerate(VERDICTS)}
        strengths = {None: 0} | {name: code + 1 for code, name in enumerate(STRENGTHS)}
        states = {None: NO_CI} | {name: code for code, name in enumerate(CI_STATES)}

        def convert(column: list[tuple]) -> dict[str, np.ndarray]:
            n = len(column[0])
            gold, ci_a, ci_b = (column[i] if len(column) > i else (None,) * n for i in (8, 9, 10))
            return {
                "unit": units.codes(zip(column[0], column[1], strict=True)),
                "rater": raters.codes(column[2]),
                "model_a": models.codes(column[3]),
                "model_b": models.codes(column[4]),
                "verdict": np.fromiter((verdicts[v] for v in column[5]), dtype=np.int8, count=n),
                "strength": np.fromiter((strengths[s] for s in column[6]), dtype=np.int8, count=n),
                "seconds": np.array([np.nan if s is None else s for s in column[7]], dtype=float),
                "gold": np.fromiter((NO_GOLD if g is None else verdicts[g] for g in gold), dtype=np.int8, count=n),
                "ci_a": np.fromiter((states[c] for c in ci_a), dtype=np.int8, count=n),
                "ci_b": np.fromiter((states[c] for c in ci_b), dtype=np.int8, count=n),
            }

        columns = _columns(rows, convert, width=11)
        return cls(units=units.names, raters=raters.names, models=models.names, **columns)

    def __len__(self) -> int:
        return len(self.verdict)

    def signed_strength(self) -> np.ndarray:
        """The verdict on one scale, in the letters shown: +3 much better A ... -3 much better B;
        a tie and neither are 0."""
        sign = np.where(self.verdict == A, 1, np.where(self.verdict == B, -1, 0))
        return (sign * self.strength).astype(float)


@dataclass(frozen=True)
class Ratings:
    """One row per current score: a rater's score of one side on one axis in a unit."""

    axes: list[str]
    raters: list[str]
    models: list[str]
    unit: np.ndarray  # codes of (task id, round number)
    rater: np.ndarray
    side: np.ndarray  # 0 for A, 1 for B
    axis: np.ndarray
    score: np.ndarray
    model: np.ndarray  # the model of the side scored

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence], models: Names | None = None) -> Ratings:
        """Rows of (task_id, round, rater, side, axis, score, model_a, model_b)."""
        units, raters, axes, models = Names(), Names(), Names(), models or Names()

        def convert(column: list[tuple]) -> dict[str, np.ndarray]:
            side = np.array([s == "B" for s in column[3]], dtype=np.int8)
            model_a, model_b = models.codes(column[6]), models.codes(column[7])
            return {
                "unit": units.codes(zip(column[0], column[1], strict=True)),
                "rater": raters.codes(column[2]),
                "side": side,
                "axis": axes.codes(column[4]),
                "score": np.array(column[5], dtype=float),
                "model": np.where(side == 0, model_a, model_b),
            }

        columns = _columns(rows, convert, width=8)
        return cls(axes=axes.names, raters=raters.names, models=models.names, **columns)


def _columns(rows: Iterable[Sequence], convert: Callable, *, width: int) -> dict[str, np.ndarray]:
    """Convert the rows a chunk at a time (``convert`` takes a chunk's columns) and join the
    chunks: only the arrays are ever whole in memory, never a million row objects."""
    parts = defaultdict(list)
    iterator = iter(rows)
    while chunk := list(islice(iterator, CHUNK)):
        for name, array in convert(list(zip(*chunk, strict=True))).items():
            parts[name].append(array)
    if not parts:
        return convert([()] * width)
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}


@dataclass(frozen=True)
class Reviews:
    """Reviews (not withdrawn) of any version of a judgment, counted per reviewer, rater and
    decision; and each reviewer's median turnaround, from the vote to the review, in seconds."""

    reviewers: list[str]
    raters: list[str]
    reviewer: np.ndarray
    rater: np.ndarray  # whose judgments
    approved: np.ndarray  # bool: approved, else rejected
    count: np.ndarray
    turnaround: dict[str, float]

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence], turnaround: dict[str, float]) -> Reviews:
        """Rows of (reviewer, rater, decision, count)."""
        reviewers, raters = Names(), Names()

        def convert(column: list[tuple]) -> dict[str, np.ndarray]:
            return {
                "reviewer": reviewers.codes(column[0]),
                "rater": raters.codes(column[1]),
                "approved": np.array([decision == ReviewDecision.APPROVED for decision in column[2]], dtype=bool),
                "count": np.array(column[3], dtype=np.int64),
            }

        columns = _columns(rows, convert, width=4)
        return cls(reviewers=reviewers.names, raters=raters.names, turnaround=turnaround, **columns)
