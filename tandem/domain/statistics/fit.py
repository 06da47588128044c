"""Bradley–Terry model strengths with bootstrap confidence intervals, as the Chatbot Arena
leaderboard computes them.

Library: ``choix`` (``ilsr_pairwise_dense``, iterative Luce spectral ranking) fits the maximum-
likelihood Bradley–Terry strengths from a models × models matrix of win counts. It works on the
counts, not on the battles, so a fit costs the same for a hundred judgments or a million; it
converges in a few iterations, and it accepts fractional wins, which is how ties count (half a
win each way). A tiny regularization (``ALPHA``, a hundredth of a battle between every two
models) keeps the strengths finite when a model never won or two groups of models never met.

The bootstrap resamples battles with replacement. A battle is one of few kinds (which model was
A, which was B, who won), so drawing N battles from the observed ones is a multinomial draw over
those kinds' counts (numpy), done for all resamples at once; all resamples are then fitted at
once too (``strengths_of_each``: choix's algorithm, batched in numpy).

Strengths are reported on the Arena's Elo-like scale, ``1000 + 400 · log10(odds)``: a gap of 400
points means 10:1 odds of winning. Rank(UB) is 1 + the number of models whose lower bound is above
this model's upper bound: a model is only ranked below those it is statistically behind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import choix
import numpy as np

from tandem.domain.statistics.records import A, B, Judgments, Ratings, numbered

ALPHA = 0.01
SCALE = 400 / math.log(10)
BASE = 1000
CONFIDENCE = 0.95
# Outcomes of a battle for its first model: lost, tie (ties and both-bad), won.
LOST, TIED, WON = 0, 1, 2


@dataclass(frozen=True)
class Battles:
    """Battles between models (codes into ``models``): first and second, and who won."""

    models: list[str]
    first: np.ndarray
    second: np.ndarray
    outcome: np.ndarray  # LOST, TIED or WON, for the first

    def counts(self) -> np.ndarray:
        """Battles of each kind, shape (models, models, 3): [first, second, outcome]."""
        m = len(self.models)
        cells = (self.first * m + self.second) * 3 + self.outcome
        return np.bincount(cells, minlength=m * m * 3).reshape(m, m, 3).astype(float)


@dataclass(frozen=True)
class Ranking:
    models: list[str]
    strength: np.ndarray  # natural-log strengths, mean 0 (the fit's own scale)
    lower: np.ndarray
    upper: np.ndarray
    rank_ub: np.ndarray
    battles: np.ndarray  # models × models: battles between the two, either way round
    win_rate: np.ndarray  # row's share of wins against column, ties counting half; nan if none

    def rating(self, values: np.ndarray) -> np.ndarray:
        """Strengths on the Elo-like scale."""
        return BASE + SCALE * values

    def as_dict(self) -> dict:
        order = np.lexsort((-self.strength, self.rank_ub))
        names = self.models

        def matrix(values: np.ndarray, cell) -> dict:
            return {names[i]: {names[j]: cell(values[i, j]) for j in order if i != j} for i in order}

        return {
            "models": [
                {
                    "model": names[i],
                    "rank_ub": int(self.rank_ub[i]),
                    "rating": round(float(self.rating(self.strength[i])), 1),
                    "lower": round(float(self.rating(self.lower[i])), 1),
                    "upper": round(float(self.rating(self.upper[i])), 1),
                    "battles": int(self.battles[i].sum()),
                }
                for i in order
            ],
            "win_rate": matrix(self.win_rate, lambda rate: None if np.isnan(rate) else round(float(rate), 4)),
            "battles": matrix(self.battles, int),
        }


def judgment_battles(judgments: Judgments, rows: np.ndarray | None = None) -> Battles:
    """One battle per judgment (of those ``rows`` selects, a mask or indices; all without): the
    model shown as A against the one shown as B; a tie and neither (both bad) are ties."""
    picked = slice(None) if rows is None else rows
    verdict = judgments.verdict[picked]
    outcome = np.select([verdict == A, verdict == B], [WON, LOST], TIED)
    return _battles(judgments.models, judgments.model_a[picked], judgments.model_b[picked], outcome)


def axis_battles(ratings: Ratings, axis: int) -> Battles:
    """One battle per rater and unit that scored both sides on the axis: the higher score wins."""
    rows = np.flatnonzero(ratings.axis == axis)
    key = ratings.unit[rows] * (len(ratings.raters) + 1) + ratings.rater[rows]
    on_a, on_b = ratings.side[rows] == 0, ratings.side[rows] == 1
    # A rater has one current score per side, axis and unit, so the keys are unique per side.
    _, in_a, in_b = np.intersect1d(key[on_a], key[on_b], assume_unique=True, return_indices=True)
    a, b = rows[on_a][in_a], rows[on_b][in_b]
    outcome = (np.sign(ratings.score[a] - ratings.score[b]) + 1).astype(np.int64)
    return _battles(ratings.models, ratings.model[a], ratings.model[b], outcome)


def _battles(models: list[str], first: np.ndarray, second: np.ndarray, outcome: np.ndarray) -> Battles:
    """Battles numbering only the models that took part, so none is ranked on no evidence."""
    present, codes = numbered(np.concatenate([first, second]))
    return Battles(
        models=[models[i] for i in present],
        first=codes[: len(first)],
        second=codes[len(first) :],
        outcome=outcome.astype(np.int64),
    )


def strengths(wins: np.ndarray) -> np.ndarray:
    """Maximum-likelihood log-strengths (mean 0) from a matrix of wins[i, j] = i's wins over j."""
    return choix.ilsr_pairwise_dense(wins, alpha=ALPHA)


def strengths_of_each(wins: np.ndarray, *, max_iter: int = 100, tol: float = 1e-8) -> np.ndarray:
    """``strengths`` of each of many win matrices (resamples × models × models) at once.

    The same fit as choix's ``ilsr_pairwise_dense`` (same chain, regularization, start and
    convergence test), with numpy's batched solver finding every chain's stationary
    distribution in one call, where a loop over choix would pay Python's and LAPACK's
    overhead a thousand times over."""
    count, m, _ = wins.shape
    params = np.zeros((count, m))
    incoming = np.swapaxes(wins, 1, 2)
    # The stationary distribution π of a generator Q solves πQ = 0 with Σπ = 1: the last of
    # the (dependent) balance equations gives way to the normalization.
    normalize = np.zeros((count, m))
    normalize[:, -1] = 1
    for _ in range(max_iter):
        weights = np.exp(params - params.mean(axis=1, keepdims=True))
        weights *= m / weights.sum(axis=1, keepdims=True)
        chain = ALPHA + incoming / (weights[:, :, None] + weights[:, None, :])
        chain[:, np.arange(m), np.arange(m)] = 0
        chain[:, np.arange(m), np.arange(m)] = -chain.sum(axis=2)
        system = np.swapaxes(chain, 1, 2).copy()
        system[:, -1, :] = 1
        stationary = np.linalg.solve(system, normalize[..., None])[..., 0]
        updated = np.log(stationary)
        updated -= updated.mean(axis=1, keepdims=True)
        done = np.abs(updated - params).sum(axis=1).max() <= tol * m
        params = updated
        if done:
            return params
    raise RuntimeError(f"the Bradley–Terry fit did not converge after {max_iter} iterations")


def _wins(counts: np.ndarray) -> np.ndarray:
    """wins[..., i, j] from battle counts [..., first, second, outcome]; a tie is half a win each."""
    half = counts[..., TIED] / 2
    won = counts[..., WON] + half
    lost = counts[..., LOST] + half
    return won + np.swapaxes(lost, -1, -2)


def rank_ub(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """1 + the number of models whose lower bound is above each model's upper bound."""
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)


def rank(battles: Battles, *, bootstrap: int = 1000, seed: int | None = 0) -> Ranking:
    """Fit the strengths, bootstrap their intervals (``bootstrap`` resamples) and rank."""
    m = len(battles.models)
    counts = battles.counts()
    wins = _wins(counts)
    point = strengths(wins) if m > 1 else np.zeros(m)
    lower = upper = point
    total = int(counts.sum())
    if bootstrap > 0 and m > 1 and total > 0:
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(total, counts.ravel() / total, size=bootstrap).reshape(bootstrap, m, m, 3)
        samples = strengths_of_each(_wins(draws))
        tail = (1 - CONFIDENCE) / 2 * 100
        lower, upper = np.percentile(samples, [tail, 100 - tail], axis=0)
    played = counts.sum(axis=2)
    played = played + played.T
    with np.errstate(invalid="ignore", divide="ignore"):
        win_rate = np.where(played > 0, wins / played, np.nan)
    return Ranking(
        models=battles.models,
        strength=point,
        lower=lower,
        upper=upper,
        rank_ub=rank_ub(lower, upper),
        battles=played,
        win_rate=win_rate,
    )
