"""Agreement among raters: Krippendorff's α, raw percent agreement, per-pair agreement, and each
judgment's agreement with the majority of the other raters of its pair.

α is the ``krippendorff`` package's (the reference implementation), given each unit's counts of
each value (its ``value_counts`` input), counted here with numpy: a units × values table, not the
raters × units matrix, which at a million judgments would be mostly empty.

A unit is a pair in a round. Verdicts are compared in the letters shown (A, B, tie, neither):
every rater of a unit saw the same sides under the same letters, so agreement within a unit is the
same in any orientation; and in the letters shown, the pooled distribution the expected
disagreement comes from is balanced by the random side draw. Coded by model instead ("the first
model by name wins"), a clearly better model would skew that distribution and α would punish
raters for agreeing on it (α's known paradox with skewed marginals).

- nominal α on the verdict (tie and neither are different answers);
- ordinal α on the signed strength, +3 (A, much) ... 0 (tie, neither) ... −3 (B, much);
- interval α on each rubric axis, a unit being one side of a pair in a round.
"""

from __future__ import annotations

from typing import Any, Literal

import krippendorff
import numpy as np

from tandem.domain.statistics.records import VERDICTS, Judgments, numbered

Level = Literal["nominal", "ordinal", "interval", "ratio"]


def alpha(unit: np.ndarray, value: np.ndarray, level: Level) -> float | None:
    """Krippendorff's α of one value per (rater, unit) row, units numbered from 0; None when no
    unit has two values or all values are the same (α is undefined)."""
    domain, codes = numbered(value)
    size = len(domain)
    if size < 2:
        return None
    counts = np.bincount(unit * size + codes, minlength=(int(unit.max()) + 1) * size).reshape(-1, size)
    counts = counts[counts.sum(axis=1) >= 2]  # a unit with one value tells nothing of agreement
    if len(counts) == 0:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        found = krippendorff.alpha(value_counts=counts, value_domain=domain, level_of_measurement=level)
    return round(float(found), 4) if np.isfinite(found) else None


def verdict_counts(judgments: Judgments) -> np.ndarray:
    """Votes per unit and verdict, shape (units, 4)."""
    size = len(VERDICTS)
    cells = judgments.unit * size + judgments.verdict
    return np.bincount(cells, minlength=len(judgments.units) * size).reshape(-1, size)


def percent_agreement(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: (pairs of its raters who gave the same verdict, pairs of its raters)."""
    raters = counts.sum(axis=1)
    return (counts * (counts - 1) // 2).sum(axis=1), raters * (raters - 1) // 2


def with_majority_of_others(judgments: Judgments, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per judgment: (whether the other raters of its unit have a majority verdict, one strictly
    more common than any other, and whether this judgment's verdict is it)."""
    rows = np.arange(len(judgments))
    others = counts[judgments.unit].copy()
    others[rows, judgments.verdict] -= 1
    ordered = np.sort(others, axis=1)
    defined = ordered[:, -1] > ordered[:, -2]
    return defined, defined & (others.argmax(axis=1) == judgments.verdict)


def summary(judgments: Judgments, *, per_pair: bool = False) -> dict:
    """α on the verdict and the signed strength, percent agreement and per-pair agreement."""
    counts = verdict_counts(judgments)
    agreeing, pairs = percent_agreement(counts)
    shared = pairs > 0
    result: dict[str, Any] = {
        "alpha_verdict_nominal": alpha(judgments.unit, judgments.verdict, "nominal"),
        "alpha_strength_ordinal": alpha(judgments.unit, judgments.signed_strength(), "ordinal"),
        "percent_agreement": round(float(agreeing.sum() / pairs.sum()), 4) if pairs.sum() else None,
        "pairs_with_several_raters": int(shared.sum()),
        "pairs_unanimous": int((shared & (agreeing == pairs)).sum()),
        "mean_pair_agreement": round(float((agreeing[shared] / pairs[shared]).mean()), 4) if shared.any() else None,
    }
    if per_pair:
        result["pairs"] = [
            {
                "task_id": task_id,
                "round": number,
                "raters": int(counts[u].sum()),
                "votes": {VERDICTS[v]: int(counts[u, v]) for v in np.flatnonzero(counts[u])},
                "agreement": round(float(agreeing[u] / pairs[u]), 4),
            }
            for u, (task_id, number) in enumerate(judgments.units)
            if pairs[u]
        ]
    return result
