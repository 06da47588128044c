"""Position bias: do raters prefer the side shown as Option A, whatever model it holds?

Sides are drawn at random per task, so without a bias a decisive verdict (A or B; ties and
neither say nothing about position) names A half the time. The share naming A is tested against
one half with an exact two-sided binomial test (``scipy.stats.binomtest``), which also gives
its 95 % Clopper–Pearson interval.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from tandem.domain.statistics.records import A, B


def position_bias(verdict: np.ndarray) -> dict:
    """P(verdict = A) among the decisive verdicts, with the test; shares are None without any."""
    decisive = int(np.isin(verdict, (A, B)).sum())
    chose_a = int((verdict == A).sum())
    if decisive == 0:
        return {"decisive": 0, "chose_a": 0, "p_a": None, "ci": None, "p_value": None}
    test = binomtest(chose_a, decisive, 0.5)
    interval = test.proportion_ci(0.95)
    return {
        "decisive": decisive,
        "chose_a": chose_a,
        "p_a": round(chose_a / decisive, 4),
        "ci": [round(interval.low, 4), round(interval.high, 4)],
        "p_value": float(f"{test.pvalue:.3g}"),
    }
