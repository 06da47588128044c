"""Per rater and per reviewer figures, and flags for statistically implausible raters.

Time on task is what Tandem records with each vote: from the pair's opening (both PRs ready for
review) to the moment the vote's comment was written. It includes any wait before the rater
started, so medians, not means, are reported.

A rater is flagged (thresholds below, all needing at least ``FLAG_MIN_VOTES`` votes, and
p-values small enough that among a few hundred honest raters a false flag is unlikely):

- ``always A`` / ``always B``: at least ``SAME_SIDE_SHARE`` of their decisive verdicts name one
  letter, and the binomial test against one half gives p < ``FLAG_P_VALUE``;
- ``same strength``: at least ``SAME_STRENGTH_SHARE`` of their decisive verdicts have one
  strength (note: ``clearly`` is what a bare ``/prefer A`` records);
- ``low agreement``: they agree with the majority of the other raters of a pair less often than
  everyone else does, by a one-sided binomial test at p < ``FLAG_P_VALUE`` (against the rate of
  all other raters' judgments pooled).

Gold accuracy is the share of a rater's votes on gold tasks matching the gold verdict; None (shown
"n/a") while no task carries gold.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from tandem.domain.statistics.bias import position_bias
from tandem.domain.statistics.records import NO_GOLD, A, B, Judgments, Reviews

FLAG_MIN_VOTES = 20
FLAG_P_VALUE = 0.001
SAME_SIDE_SHARE = 0.9
SAME_STRENGTH_SHARE = 0.95


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def per_rater(judgments: Judgments, defined: np.ndarray, agrees: np.ndarray, reviews: Reviews) -> list[dict]:
    """One entry per rater with a judgment, most judgments first. ``defined``/``agrees``: per
    judgment, whether the other raters had a majority and whether it matched it."""
    approved = np.bincount(reviews.rater, weights=reviews.count * reviews.approved, minlength=len(reviews.raters))
    reviewed_by_rater = np.bincount(reviews.rater, weights=reviews.count, minlength=len(reviews.raters))
    decisions = {
        login: (int(approved[code]), int(reviewed_by_rater[code] - approved[code]))
        for code, login in enumerate(reviews.raters)
    }
    total_defined, total_agrees = int(defined.sum()), int(agrees.sum())
    order = np.argsort(judgments.rater, kind="stable")
    bounds = np.searchsorted(judgments.rater[order], np.arange(len(judgments.raters) + 1))
    entries = []
    for code, login in enumerate(judgments.raters):
        rows = order[bounds[code] : bounds[code + 1]]
        if len(rows) == 0:
            continue
        seconds = judgments.seconds[rows]
        seconds = seconds[~np.isnan(seconds)]
        gold = judgments.gold[rows] != NO_GOLD
        n_defined, n_agrees = int(defined[rows].sum()), int(agrees[rows].sum())
        approvals, rejections = decisions.get(login, (0, 0))
        entry = {
            "rater": login,
            "judgments": len(rows),
            "median_seconds_on_task": round(float(np.median(seconds)), 1) if len(seconds) else None,
            "agreement_with_majority": _share(n_agrees, n_defined),
            "compared_with_majority": n_defined,
            "gold_accuracy": _share(
                int((judgments.verdict[rows][gold] == judgments.gold[rows][gold]).sum()), int(gold.sum())
            ),
            "position_bias": position_bias(judgments.verdict[rows]),
            "reviewed": approvals + rejections,
            "approval_rate": _share(approvals, approvals + rejections),
            "rejection_rate": _share(rejections, approvals + rejections),
            "returned": rejections,  # each rejection returned a vote to them
        }
        others = (total_agrees - n_agrees) / (total_defined - n_defined) if total_defined > n_defined else None
        entry["flags"] = _flags(judgments.verdict[rows], judgments.strength[rows], n_defined, n_agrees, others)
        entries.append(entry)
    return sorted(entries, key=lambda entry: (-entry["judgments"], entry["rater"]))


def _flags(verdict: np.ndarray, strength: np.ndarray, n_defined: int, n_agrees: int, others: float | None) -> list[str]:
    flags = []
    decisive = np.isin(verdict, (A, B))
    n = int(decisive.sum())
    if n >= FLAG_MIN_VOTES:
        for letter, code in (("A", A), ("B", B)):
            chose = int((verdict == code).sum())
            if chose >= SAME_SIDE_SHARE * n and binomtest(chose, n, 0.5).pvalue < FLAG_P_VALUE:
                flags.append(f"always {letter}")
        if np.bincount(strength[decisive]).max() >= SAME_STRENGTH_SHARE * n:
            flags.append("same strength")
    if (
        n_defined >= FLAG_MIN_VOTES
        and others is not None
        and others > 0
        and binomtest(n_agrees, n_defined, min(others, 1.0), alternative="less").pvalue < FLAG_P_VALUE
    ):
        flags.append("low agreement")
    return flags


def per_reviewer(reviews: Reviews) -> list[dict]:
    """Decisions per reviewer, and the median turnaround from the vote to the review."""
    size = len(reviews.reviewers)
    decisions = np.bincount(reviews.reviewer, weights=reviews.count, minlength=size).astype(int)
    approved = np.bincount(reviews.reviewer, weights=reviews.count * reviews.approved, minlength=size).astype(int)
    entries = [
        {
            "reviewer": login,
            "decisions": int(decisions[code]),
            "approved": int(approved[code]),
            "rejected": int(decisions[code] - approved[code]),
            "median_turnaround_seconds": round(float(reviews.turnaround[login]), 1),
        }
        for code, login in enumerate(reviews.reviewers)
    ]
    return sorted(entries, key=lambda entry: (-entry["decisions"], entry["reviewer"]))
