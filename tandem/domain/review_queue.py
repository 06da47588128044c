"""What waits in review: the current votes of open rounds that wait for reviewers, or that were
returned to their raters, oldest first, with how long they have waited."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.domain.judging import ReviewDecision, ReviewState
from tandem.domain.rounds.lifecycle import RoundStatus
from tandem.infra.db import utcnow
from tandem.infra.models import Judgment, JudgmentReview, Pair, Round, Task

# What `status` selects: votes waiting for reviewers, or returned to their raters.
STATUSES = {"waiting": ReviewState.PENDING, "returned": ReviewState.RETURNED}


def review_queue(
    session: Session, status: str = "waiting", *, team: str | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The queue (``status``: "waiting" or "returned"), of one team's tasks if ``team`` is given.

    A waiting vote has waited since it was written; a returned one since it was returned.
    """
    state = STATUSES[status]
    query = (
        select(Judgment, Round.number, Task.repo_full_name)
        .join(Round, Round.id == Judgment.round_id)
        .join(Task, Task.id == Judgment.task_id)
        .join(Pair, Pair.id == Judgment.pair_id)
        .where(
            Judgment.superseded_at.is_(None),
            Judgment.review_state == state,
            Round.status == RoundStatus.OPEN,
            Pair.closed_at.is_(None),
        )
    )
    if team is not None:
        query = query.where(Task.team == team)
    rows = session.execute(query).all()
    ids = [judgment.id for judgment, _number, _repo in rows]
    reviews: dict[int, list[JudgmentReview]] = defaultdict(list)
    for review in session.scalars(
        select(JudgmentReview)
        .where(JudgmentReview.judgment_id.in_(ids), JudgmentReview.withdrawn_at.is_(None))
        .order_by(JudgmentReview.id)
    ):
        reviews[review.judgment_id].append(review)
    resubmissions = set(
        session.scalars(
            select(Judgment.superseded_by_id).where(
                Judgment.superseded_by_id.in_(ids), Judgment.review_state == ReviewState.RETURNED
            )
        )
    )
    now = now or utcnow()
    items = []
    for judgment, number, repo in rows:
        mine = reviews[judgment.id]
        since = mine[-1].created_at if state == ReviewState.RETURNED and mine else judgment.voted_at
        item = {
            "task_id": judgment.task_id,
            "repo": repo,
            "round": number,
            "rater": judgment.rater_login,
            "judgment_id": judgment.id,
            "vote_url": judgment.comment_url,
            "resubmitted": judgment.id in resubmissions,
            "approvals": len({r.reviewer_id for r in mine if r.decision == ReviewDecision.APPROVED}),
            "since": since.isoformat(),
            "waiting_seconds": round((now - since).total_seconds(), 1),
        }
        if state == ReviewState.RETURNED and mine:
            item["returned_by"], item["reason"] = mine[-1].reviewer_login, mine[-1].reason
        items.append(item)
    return sorted(items, key=lambda item: (item["since"], item["judgment_id"]))
