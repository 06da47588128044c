"""The review history of a rater's vote in a round, step by step, for the export.

A rater's versions of their vote in a round, in the order they were written, each with its
reviews that stand (not withdrawn): the first version is "submitted", one that replaces a vote a
reviewer returned is "resubmitted" (any other new version is "submitted" again), and each
review is "approved" or "returned" (with the reviewer's reason). The history of one version
holds the steps up to it: what came before it, and its own reviews.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from tandem.domain.judging import ReviewDecision, ReviewState
from tandem.infra.models import Judgment, JudgmentReview


class Step(StrEnum):
    SUBMITTED = "submitted"
    RESUBMITTED = "resubmitted"
    APPROVED = "approved"
    RETURNED = "returned"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def histories(session: Session, rows) -> dict[int, list[dict[str, Any]]]:
    """For rows with id, round_id and rater_id (judgments): {judgment id: its steps}."""
    keys = {(row.round_id, row.rater_id) for row in rows}
    if not keys:
        return {}
    versions: dict[tuple[int, int], list] = defaultdict(list)
    for version in session.execute(
        select(Judgment.id, Judgment.round_id, Judgment.rater_id, Judgment.voted_at, Judgment.review_state)
        .where(tuple_(Judgment.round_id, Judgment.rater_id).in_(keys))
        .order_by(Judgment.voted_at, Judgment.comment_id, Judgment.id)
    ):
        versions[(version.round_id, version.rater_id)].append(version)
    reviews: dict[int, list] = defaultdict(list)
    ids = [version.id for chain in versions.values() for version in chain]
    for review in session.execute(
        select(
            JudgmentReview.judgment_id,
            JudgmentReview.decision,
            JudgmentReview.reviewer_login,
            JudgmentReview.reason,
            JudgmentReview.created_at,
        )
        .where(JudgmentReview.judgment_id.in_(ids), JudgmentReview.withdrawn_at.is_(None))
        .order_by(JudgmentReview.id)
    ):
        reviews[review.judgment_id].append(review)
    wanted = {row.id for row in rows}
    found: dict[int, list[dict[str, Any]]] = {}
    for chain in versions.values():
        steps: list[dict[str, Any]] = []
        previous = None
        for version in chain:
            returned = previous is not None and previous.review_state == ReviewState.RETURNED
            step = Step.RESUBMITTED if returned else Step.SUBMITTED
            steps.append({"step": step, "judgment_id": version.id, "at": _iso(version.voted_at)})
            for review in reviews[version.id]:
                steps.append(
                    {
                        "step": Step.APPROVED if review.decision == ReviewDecision.APPROVED else Step.RETURNED,
                        "judgment_id": version.id,
                        "at": _iso(review.created_at),
                        "reviewer": review.reviewer_login,
                        "reason": review.reason,
                    }
                )
            if version.id in wanted:
                found[version.id] = list(steps)
            previous = version
    return found
