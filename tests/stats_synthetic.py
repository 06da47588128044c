"""Synthetic judgments drawn from known model strengths (for the statistics tests and
bench/stats.py): pairs of random models with random sides, each judged by a few raters who
follow Bradley–Terry, some of them with a planted position bias or always answering A."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tandem.statistics.records import STRENGTHS


@dataclass
class Plan:
    models: int = 6
    pairs: int = 200
    raters: int = 6
    raters_per_pair: int = 3
    tie_share: float = 0.0  # ties and neither, drawn regardless of the models
    position_logit: float = 0.0  # every rater's extra log-odds for the side shown as A
    always_a: tuple[str, ...] = ()  # raters who always answer A
    spread: float = 1.0  # standard deviation of the true strengths
    seed: int = 0
    strengths: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        true = np.sort(rng.normal(0, self.spread, self.models))[::-1]
        self.strengths = true - true.mean()

    @property
    def model_names(self) -> list[str]:
        return [f"model-{i:02d}" for i in range(self.models)]  # model-00 is the strongest

    @property
    def rater_names(self) -> list[str]:
        return [f"rater-{i:02d}" for i in range(self.raters)]


@dataclass
class Pairs:
    """Columns, one entry per pair or per judgment (``rater``, ``pair``, ``verdict``...)."""

    model_a: np.ndarray
    model_b: np.ndarray
    pair: np.ndarray
    rater: np.ndarray
    verdict: np.ndarray  # "A", "B", "tie", "neither"
    strength: np.ndarray  # a strength or None
    seconds: np.ndarray


def draw(plan: Plan) -> Pairs:
    rng = np.random.default_rng(plan.seed + 1)
    first = rng.integers(0, plan.models, plan.pairs)
    second = (first + rng.integers(1, plan.models, plan.pairs)) % plan.models
    per = plan.raters_per_pair
    pair = np.repeat(np.arange(plan.pairs), per)
    rater = np.argsort(rng.random((plan.pairs, plan.raters)), axis=1)[:, :per].ravel()
    logit = plan.strengths[first[pair]] - plan.strengths[second[pair]] + plan.position_logit
    a_wins = rng.random(len(pair)) < 1 / (1 + np.exp(-logit))
    tied = rng.random(len(pair)) < plan.tie_share
    always = np.isin(np.array(plan.rater_names)[rater], plan.always_a)
    verdict = np.where(a_wins, "A", "B").astype(object)
    verdict[tied] = np.where(rng.random(tied.sum()) < 0.5, "tie", "neither")
    verdict[always] = "A"
    decisive = np.isin(verdict, ("A", "B"))
    strength = np.where(decisive, np.array(STRENGTHS, dtype=object)[rng.integers(0, 3, len(pair))], None)
    return Pairs(
        model_a=first,
        model_b=second,
        pair=pair,
        rater=rater,
        verdict=verdict,
        strength=strength,
        seconds=rng.gamma(2.0, 300.0, len(pair)),
    )


def rows(plan: Plan) -> list[tuple]:
    """Rows for ``Judgments.from_rows``: all approved, one round per pair (task id = pair + 1)."""
    drawn = draw(plan)
    models, raters = plan.model_names, plan.rater_names
    return [
        (int(p) + 1, 1, raters[r], models[drawn.model_a[p]], models[drawn.model_b[p]], v, s, float(t), "approved")
        for p, r, v, s, t in zip(drawn.pair, drawn.rater, drawn.verdict, drawn.strength, drawn.seconds)
    ]
