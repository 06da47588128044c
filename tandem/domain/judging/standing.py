"""How far the current round is: its current judgments by review state."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.domain.judging.context import Progress
from tandem.domain.judging.rounds import _latest_round
from tandem.domain.vocabulary import ReviewState
from tandem.infra.models import Judgment, Pair

# Progress -----------------------------------------------------------------------------------------


def progress(session: Session, pair: Pair, required_judgments: int = 1) -> Progress:
    """Count the current round's current judgments by review state.

    The task is complete when at least ``required_judgments`` raters have a current judgment in
    the current round and every one of them is approved.
    """
    required = max(1, required_judgments)
    round_ = _latest_round(session, pair.task_id)
    if round_ is None:
        return Progress(1, required, 0, 0, 0, 0, ())
    rows = session.execute(
        select(Judgment.rater_login, Judgment.review_state)
        .where(Judgment.round_id == round_.id, Judgment.superseded_at.is_(None))
        .order_by(Judgment.id)
    ).all()
    states = [state for _, state in rows]
    return Progress(
        round=round_.number,
        required=required,
        judgments=len(rows),
        approved=states.count(ReviewState.APPROVED),
        returned=states.count(ReviewState.RETURNED),
        pending=states.count(ReviewState.PENDING),
        raters=tuple(login for login, _ in rows),
    )
