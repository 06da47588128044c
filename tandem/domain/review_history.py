"""The review history of a rater's vote in a round, step by step, for the export.

A rater's versions of their vote in a round, in the order they were written, each with its
reviews that stand (not withdrawn): the first version is "submitted", one that replaces a vote a
reviewer returned is "resubmitted" (any other new version is "submitted" again), and each
review is "approved" or "returned" (with the reviewer's reason). The history of one version
holds the steps up to it: what came before it, and its own reviews.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from tandem.domain.vocabulary import ReviewDecision, ReviewState
from tandem.infra import bulk
from tandem.infra.models import Judgment, JudgmentReview


class Step(StrEnum):
    SUBMITTED = "submitted"
    RESUBMITTED = "resubmitted"
    APPROVED = "approved"
    RETURNED = "returned"


Key = tuple[int, int]  # (round, rater)


def versions(bind: Connection, keys: Collection[Key]) -> dict[Key, list[tuple[int, str, str]]]:
    """Every version of each rater's vote in each round, in the order they were written, as
    (id, voted_at, review_state) (times as ISO text, tandem.infra.bulk.plain)."""
    found: dict[Key, list[tuple[int, str, str]]] = {}
    if keys:
        query = select(
            *bulk.plain(Judgment.round_id, Judgment.rater_id, Judgment.id, Judgment.voted_at, Judgment.review_state)
        )
        last: tuple[int, int] | None = None
        # By round and rater, each one's in the order written: one lookup per chain, not per version.
        for round_id, rater_id, version_id, voted_at, review_state in bulk.tuples(
            bind.execute(
                bulk.of_pairs(bind, query, Judgment.round_id, Judgment.rater_id, keys).order_by(
                    Judgment.round_id, Judgment.rater_id, Judgment.voted_at, Judgment.comment_id, Judgment.id
                )
            )
        ):
            if last != (round_id, rater_id):
                last = (round_id, rater_id)
                chain = found[last] = []
            chain.append((version_id, voted_at, review_state))
    return found


# A review as the export gives it, field by field.
REVIEW_FIELDS = (
    "reviewer_id",
    "reviewer_login",
    "decision",
    "reason",
    "comment_id",
    "delivery_id",
    "created_at",
    "withdrawn_at",
)


def reviews(bind: Connection, judgment_ids: Collection[int]) -> dict[int, list[dict[str, Any]]]:
    """The reviews of these judgments, withdrawn or not, in the order they were written, as
    dicts of ``REVIEW_FIELDS`` (times as ISO text)."""
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if judgment_ids:
        columns = bulk.plain(*(JudgmentReview.__table__.c[name] for name in ("judgment_id", *REVIEW_FIELDS)))
        for judgment_id, *fields in bulk.tuples(
            bind.execute(
                select(*columns)
                .where(bulk.among(bind, JudgmentReview.judgment_id, judgment_ids))
                .order_by(JudgmentReview.id)
            )
        ):
            found[judgment_id].append(dict(zip(REVIEW_FIELDS, fields, strict=True)))
    return found


def steps(
    chains: dict[Key, list[tuple[int, str, str]]], reviews_of: dict[int, list], wanted: Collection[int]
) -> dict[int, list[dict[str, Any]]]:
    """{judgment id: its steps} for the ``wanted`` versions among ``chains`` (from ``versions``),
    with ``reviews_of`` their reviews (from ``reviews``; those withdrawn are left out)."""
    found: dict[int, list[dict[str, Any]]] = {}
    # Read for every version of every row an export writes: names bound once, not looked up each time.
    submitted, resubmitted, approved, returned = Step.SUBMITTED, Step.RESUBMITTED, Step.APPROVED, Step.RETURNED
    was_returned, approval, no_reviews = ReviewState.RETURNED, ReviewDecision.APPROVED, ()
    for chain in chains.values():
        taken: list[dict[str, Any]] = []
        step = submitted
        for version_id, voted_at, review_state in chain:
            taken.append({"step": step, "judgment_id": version_id, "at": voted_at})
            for review in reviews_of.get(version_id, no_reviews):
                if review["withdrawn_at"] is not None:
                    continue
                taken.append(
                    {
                        "step": approved if review["decision"] == approval else returned,
                        "judgment_id": version_id,
                        "at": review["created_at"],
                        "reviewer": review["reviewer_login"],
                        "reason": review["reason"],
                    }
                )
            if version_id in wanted:
                found[version_id] = list(taken)
            # A version that replaces one a reviewer returned is resubmitted.
            step = resubmitted if review_state == was_returned else submitted
    return found


def histories(bind: Session | Connection, rows) -> dict[int, list[dict[str, Any]]]:
    """For rows with id, round_id and rater_id (judgments): {judgment id: its steps}."""
    connection = bind.connection() if isinstance(bind, Session) else bind
    chains = versions(connection, {(row.round_id, row.rater_id) for row in rows})
    every = [version[0] for chain in chains.values() for version in chain]
    return steps(chains, reviews(connection, every), {row.id for row in rows})
