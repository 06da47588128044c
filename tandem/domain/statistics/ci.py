"""CI as a covariate of the votes: how often the side whose CI passed is preferred over the side
whose CI failed, and the ranking again without the votes on pairs where a side's CI failed.

A vote's CI is each side's state on the heads it was cast on, when it was recorded
(Judgment.ci_state_a/_b; tandem.domain.ci). A tie and `neither` count half for the passing side, as
in the win rates of the ranking.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tandem.domain.ci import CiState
from tandem.domain.statistics import fit
from tandem.domain.statistics.queries import Filters, _rows, _scoped
from tandem.domain.statistics.records import Judgments
from tandem.domain.vocabulary import ReviewState, Verdict
from tandem.infra.models import Judgment, Round

_CREDIT = {Verdict.TIE: 0.5, Verdict.NEITHER: 0.5}


def covariate(session: Session, filters: Filters, *, bootstrap: int = 1000, seed: int | None = 0) -> dict:
    """The votes the filters select with exactly one side's CI passing and the other's failing,
    the share the passing side won, and the ranking of the votes where no side's CI failed."""
    query = _votes(filters)
    kept, passing_wins, contested, failed = [], 0.0, 0, 0
    for row in _rows(session, query):
        *judgment, ci_a, ci_b = row
        verdict = judgment[5]
        states = {"A": ci_a, "B": ci_b}
        if CiState.FAILURE in states.values():
            failed += 1
            passed = [letter for letter, state in states.items() if state == CiState.SUCCESS]
            if len(passed) == 1:
                contested += 1
                passing_wins += 1.0 if verdict == passed[0] else _CREDIT.get(verdict, 0.0)
        else:
            kept.append(tuple(judgment))
    ranking = fit.rank(fit.judgment_battles(Judgments.from_rows(kept)), bootstrap=bootstrap, seed=seed)
    return {
        "votes_one_side_passing": contested,
        "passing_side_win_rate": round(passing_wins / contested, 4) if contested else None,
        "votes_with_ci_failed": failed,
        "ranking_without_ci_failed": ranking.as_dict(),
    }


def _votes(filters: Filters) -> Select:
    """The current votes the filters select, as Judgments.from_rows takes them, then both CI states."""
    query, model_a, model_b = _scoped(
        select(Judgment.task_id).select_from(Judgment), Judgment.round_id, Judgment.voted_at, filters
    )
    query = query.add_columns(
        Round.number,
        Judgment.rater_login,
        model_a,
        model_b,
        Judgment.verdict,
        Judgment.strength,
        Judgment.time_on_task_seconds,
        Judgment.ci_state_a,
        Judgment.ci_state_b,
    ).where(Judgment.superseded_at.is_(None))
    if not filters.include_unapproved:
        query = query.where(Judgment.review_state == ReviewState.APPROVED)
    return query
