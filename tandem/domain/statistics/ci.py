"""CI as a covariate of the votes: how often the side whose CI passed is preferred over the side
whose CI failed, and the ranking again without the votes on pairs where a side's CI failed.

A vote's CI is each side's state on the heads it was cast on, when it was recorded
(Judgment.ci_state_a/_b; tandem.domain.ci), read with the judgments (``Judgments.ci_a``/``ci_b``).
A tie and `neither` count half for the passing side, as in the win rates of the ranking.
"""

from __future__ import annotations

import numpy as np

from tandem.domain.ci import CiState
from tandem.domain.statistics import fit
from tandem.domain.statistics.records import CI_STATES, NEITHER, TIE, A, B, Judgments

FAILURE, SUCCESS = CI_STATES.index(CiState.FAILURE), CI_STATES.index(CiState.SUCCESS)


def covariate(judgments: Judgments, *, bootstrap: int = 1000, seed: int | None = 0) -> dict:
    """The votes with exactly one side's CI passing and the other's failing, the share the
    passing side won, and the ranking of the votes where no side's CI failed."""
    failed = (judgments.ci_a == FAILURE) | (judgments.ci_b == FAILURE)
    # With one side failed, at most the other passed.
    a_passing, b_passing = failed & (judgments.ci_a == SUCCESS), failed & (judgments.ci_b == SUCCESS)
    verdict = judgments.verdict
    one_passing = a_passing | b_passing
    contested = int(one_passing.sum())
    passing_wins = (
        int((a_passing & (verdict == A)).sum() + (b_passing & (verdict == B)).sum())
        + int((one_passing & np.isin(verdict, (TIE, NEITHER))).sum()) / 2
    )
    ranking = fit.rank(fit.judgment_battles(judgments, ~failed), bootstrap=bootstrap, seed=seed)
    return {
        "votes_one_side_passing": contested,
        "passing_side_win_rate": round(passing_wins / contested, 4) if contested else None,
        "votes_with_ci_failed": int(failed.sum()),
        "ranking_without_ci_failed": ranking.as_dict(),
    }
