"""Reviews of votes, deleted comments and line comments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tandem.domain import history
from tandem.domain.judging.context import CommentContext, CommentRef
from tandem.domain.judging.rounds import _lock, _round_at, current_round
from tandem.domain.judging.votes import _checked_side, _rows, _settle_scores, _settle_votes
from tandem.domain.quoting import code_span
from tandem.domain.rounds import lifecycle
from tandem.domain.vocabulary import ReviewDecision, ReviewState
from tandem.infra.db import utcnow
from tandem.infra.errors import Refused
from tandem.infra.models import (
    CommandVersion,
    DeletedComment,
    Judgment,
    JudgmentReview,
    LineComment,
    Pair,
    Rating,
    Round,
)

# Reviews ------------------------------------------------------------------------------------------


def review(
    ctx: CommentContext, decision: str, target_login: str | None = None, reason: str = ""
) -> tuple[JudgmentReview, bool]:
    """A reviewer's decision on a rater's vote as it stood when the review was written; return
    (review, created).

    The vote is ``target_login``'s, or, without a login, the only one in the round still waiting
    for this reviewer, in the round current when the review was written. A vote written after
    the review is not the one reviewed, even if it was processed first. A rejection returns the
    vote to its rater (ReviewState.RETURNED) until they vote again; an approval counts once per
    reviewer, and the vote is approved when ``ctx.review.approvals`` reviewers have approved it.
    Refused: one's own vote, the votes of a task the reviewer rated (unless
    ``reviewers_may_rate``), and approving a vote that was returned and not resubmitted.
    Idempotent per comment.
    """
    decision = ReviewDecision(decision)
    reason = (reason or "").strip()
    verb = "approve" if decision == ReviewDecision.APPROVED else "reject"
    if decision == ReviewDecision.REJECTED and not reason:
        raise Refused("say why, e.g. `/reject @rater <reason>`; the reason is shown to the rater")
    session, comment = ctx.session, ctx.comment
    login = target_login.lstrip("@") if target_login else None
    _lock(session, ctx.task_id)

    done = (
        select(JudgmentReview)
        .join(Judgment)
        .where(Judgment.task_id == ctx.task_id, JudgmentReview.comment_id == comment.comment_id)
    )
    if login:
        done = done.where(func.lower(Judgment.rater_login) == login.lower())
    existing = session.scalars(done.order_by(JudgmentReview.id.desc())).first()
    if existing is not None:
        return existing, False

    round_ = _round_at(session, ctx.pair.task, comment.created_at)
    number = round_.number
    standing = _votes_standing_at(session, round_.id, comment.written_at)
    if login:
        theirs = [judgment for judgment in standing if judgment.rater_login.lower() == login.lower()]
        if not theirs:
            raise Refused(f"{code_span('@' + login)} has no vote in round {number}")
        target = theirs[-1]
    else:
        target = _the_one_waiting(session, standing, comment.author_id, number, verb)
    _check_may_review(ctx, target, decision, number)
    row = JudgmentReview(
        judgment_id=target.id,
        reviewer_id=comment.author_id,
        reviewer_login=comment.author_login,
        decision=decision,
        reason=reason,
        comment_id=comment.comment_id,
        delivery_id=comment.delivery_id,
    )
    session.add(row)
    if history.is_deleted(session, comment.comment_id):  # processed after its deletion
        row.withdrawn_at = utcnow()
        session.flush()
        return row, False
    session.flush()
    settle_review_state(session, target, ctx.review.approvals)
    return row, True


def _the_one_waiting(session: Session, standing: list[Judgment], reviewer_id: int, number: int, verb: str) -> Judgment:
    mine = set(
        session.scalars(
            select(JudgmentReview.judgment_id).where(
                JudgmentReview.judgment_id.in_([judgment.id for judgment in standing]),
                JudgmentReview.reviewer_id == reviewer_id,
                JudgmentReview.withdrawn_at.is_(None),
            )
        )
    )
    waiting = [j for j in standing if j.review_state == ReviewState.PENDING and j.id not in mine]
    if not waiting:
        raise Refused(
            f"no vote is waiting for your review in round {number}; to change a decision, name the rater: "
            f"`/{verb} @rater`"
        )
    if len(waiting) > 1:
        logins = ", ".join(f"@{j.rater_login}" for j in waiting)
        example = f"/{verb} @{waiting[0].rater_login}" + (" <reason>" if verb == "reject" else "")
        raise Refused(
            f"{len(waiting)} raters have votes waiting for review in round {number} ({logins}); "
            f"name one, e.g. `{example}`"
        )
    return waiting[0]


def _check_may_review(ctx: CommentContext, target: Judgment, decision: ReviewDecision, number: int) -> None:
    session, reviewer_id = ctx.session, ctx.comment.author_id
    if target.rater_id == reviewer_id:
        raise Refused("you cannot review your own vote")
    if not ctx.review.reviewers_may_rate:
        rated = session.scalar(
            select(Judgment.id).where(Judgment.task_id == ctx.task_id, Judgment.rater_id == reviewer_id).limit(1)
        ) or session.scalar(
            select(Rating.id).where(Rating.task_id == ctx.task_id, Rating.rater_id == reviewer_id).limit(1)
        )
        if rated is not None:
            raise Refused(
                "you rated this task too, so its votes go to other reviewers "
                "(`review.reviewers_may_rate` is off in this repository)"
            )
    if decision == ReviewDecision.APPROVED and target.review_state == ReviewState.RETURNED:
        raise Refused(
            f"@{target.rater_login}'s vote in round {number} was sent back and has not been resubmitted; "
            "it can be approved once they vote again or edit their vote"
        )


def settle_review_state(session: Session, judgment: Judgment, approvals: int = 1) -> None:
    """Set the vote's review state from its reviews that stand: returned if the latest is a
    rejection, approved once ``approvals`` reviewers approved it since, else pending."""
    reviews = session.scalars(
        select(JudgmentReview)
        .where(JudgmentReview.judgment_id == judgment.id, JudgmentReview.withdrawn_at.is_(None))
        .order_by(JudgmentReview.id)
        .execution_options(populate_existing=True)
    ).all()
    approvers: set[int] = set()
    state = ReviewState.PENDING
    for row in reviews:
        if row.decision == ReviewDecision.REJECTED:
            approvers, state = set(), ReviewState.RETURNED
        else:
            approvers.add(row.reviewer_id)
            state = ReviewState.APPROVED if len(approvers) >= max(1, approvals) else ReviewState.PENDING
    judgment.review_state = state
    session.flush()


def resubmitted(session: Session, judgment: Judgment) -> list[str]:
    """If ``judgment`` replaced a vote that had been returned to its rater, the logins of the
    reviewers who returned it (to ask them again), else an empty list."""
    replaced = session.scalars(
        select(Judgment).where(Judgment.superseded_by_id == judgment.id, Judgment.review_state == ReviewState.RETURNED)
    ).first()
    if replaced is None:
        return []
    logins = session.scalars(
        select(JudgmentReview.reviewer_login)
        .where(
            JudgmentReview.judgment_id == replaced.id,
            JudgmentReview.decision == ReviewDecision.REJECTED,
            JudgmentReview.withdrawn_at.is_(None),
        )
        .order_by(JudgmentReview.id)
    )
    return list(dict.fromkeys(logins))


def _votes_standing_at(session: Session, round_id: int, when: datetime) -> list[Judgment]:
    """Each rater's vote in the round as it stood at ``when``, oldest first: the latest one they
    wrote by then, if it is current or was replaced by one written later (not retracted)."""
    latest: dict[int, Judgment] = {}
    versions = _rows(session, Judgment, round_id=round_id)
    for judgment in sorted(versions, key=lambda row: (row.voted_at, row.comment_id, row.id)):
        if judgment.voted_at <= when:
            latest[judgment.rater_id] = judgment
    standing = (j for j in latest.values() if j.superseded_at is None or j.superseded_by_id is not None)
    return sorted(standing, key=lambda judgment: judgment.id)


# Deleted comments ---------------------------------------------------------------------------------


def comment_deleted(
    session: Session,
    comment_id: int,
    *,
    task_id: int | None = None,
    delivery_id: str | None = None,
    approvals: int = 1,
) -> int:
    """Retract everything a deleted comment did that is still in force; return how many records.

    The deletion is logged (``task_id``: the task of the PR it was on, so that versions of it
    processed later are retracted too), its judgments and ratings end as tandem.domain.history says
    (reason "deleted"), its follow-up round is withdrawn, and its reviews are withdrawn (the
    judgment's review state is settled again from the reviews that remain, ``approvals`` the
    approvals a vote needs). An /undo is not reversed by deleting its comment, and nothing of a
    closed pair's task changes: its record is final.
    """
    task_ids = set(session.scalars(select(CommandVersion.task_id).where(CommandVersion.comment_id == comment_id)))
    task_ids |= set(session.scalars(select(Round.task_id).where(Round.comment_id == comment_id)))
    task_ids |= set(
        session.scalars(select(Judgment.task_id).join(JudgmentReview).where(JudgmentReview.comment_id == comment_id))
    )
    if task_id is not None:
        task_ids.add(task_id)
    for locked in sorted(task_ids):
        _lock(session, locked)
    open_tasks = set(
        session.scalars(
            select(Pair.task_id)
            .where(Pair.task_id.in_(task_ids), Pair.closed_at.is_(None))
            .execution_options(populate_existing=True)
        )
    )
    if not open_tasks:
        return 0
    if not history.is_deleted(session, comment_id):
        session.add(DeletedComment(comment_id=comment_id, task_id=min(open_tasks), delivery_id=delivery_id))
        session.flush()
    count = 0
    for round_id, rater_id, target in history.targets_of(session, comment_id):
        round_ = session.get_one(Round, round_id)
        if round_.task_id not in open_tasks or target in (history.UNDO, history.SCORES):
            continue
        ctx = _deletion_context(session, round_, rater_id, comment_id)
        if target == history.VOTE:
            count += len(_settle_votes(ctx, round_, rater_id)[2])
        else:
            count += len(_settle_scores(ctx, round_id, rater_id, target)[2])
    fresh = {"populate_existing": True}
    for round_ in session.scalars(
        select(Round)
        .where(Round.comment_id == comment_id, Round.task_id.in_(open_tasks), Round.withdrawn_at.is_(None))
        .execution_options(**fresh)
    ):
        round_.withdrawn_at, round_.withdrawn_reason = utcnow(), "deleted"
        if round_.status == lifecycle.RoundStatus.AWAITING_OUTPUTS:  # no longer asked of the models
            lifecycle.close_round(session, round_, lifecycle.ClosedReason.WITHDRAWN)
        count += 1
    withdrawn = session.scalars(
        select(JudgmentReview)
        .join(Judgment)
        .where(
            JudgmentReview.comment_id == comment_id,
            Judgment.task_id.in_(open_tasks),
            JudgmentReview.withdrawn_at.is_(None),
        )
        .execution_options(**fresh)
    ).all()
    for row in withdrawn:
        row.withdrawn_at = utcnow()
        count += 1
    session.flush()
    for judgment_id in {row.judgment_id for row in withdrawn}:
        settle_review_state(session, session.get_one(Judgment, judgment_id), approvals)
    session.flush()
    return count


def _deletion_context(session: Session, round_: Round, rater_id: int, comment_id: int) -> CommentContext:
    """A context for deriving the rater's rows again after a deletion. A deletion only ends rows,
    so the comment details it carries (for new rows) are never used."""
    pair = session.scalars(select(Pair).where(Pair.task_id == round_.task_id)).one()
    login = session.scalar(select(Judgment.rater_login).where(Judgment.rater_id == rater_id).limit(1))
    login = login or session.scalar(select(Rating.rater_login).where(Rating.rater_id == rater_id).limit(1))
    ref = CommentRef(comment_id, None, "", "comment", rater_id, login or "", round_.created_at, "A")
    return CommentContext(session=session, pair=pair, comment=ref)


# Line comments ------------------------------------------------------------------------------------


def record_line_comment(
    session: Session,
    pair: Pair,
    side: str,
    *,
    comment_id: int,
    url: str | None,
    delivery_id: str,
    author_id: int,
    author_login: str,
    path: str,
    body: str,
    line: int | None = None,
    start_line: int | None = None,
    diff_side: str | None = None,
    commit_sha: str | None = None,
    created_at: datetime | None = None,
    updated_at: datetime | None = None,
) -> LineComment:
    """Record a review comment on a line of one side's diff (pull_request_review_comment).

    Idempotent on comment_id; for an ``edited`` event call it again with the edited payload: the
    body and updated_at change (a deleted comment stays deleted). The comment belongs to the
    task's current round when first recorded.
    """
    side = _checked_side(side)
    _lock(session, pair.task_id)
    row = session.scalars(
        select(LineComment).where(LineComment.comment_id == comment_id).execution_options(populate_existing=True)
    ).first()
    if row is not None:
        newer = updated_at is None or row.updated_at is None or updated_at >= row.updated_at
        if row.deleted_at is None and newer and row.body != body:
            row.body = body
            row.updated_at = updated_at or utcnow()
            session.flush()
        return row
    now = utcnow()
    row = LineComment(
        task_id=pair.task_id,
        pair_id=pair.id,
        round_id=current_round(session, pair.task).id,
        side=side,
        author_id=author_id,
        author_login=author_login,
        path=path,
        line=line,
        start_line=start_line,
        diff_side=diff_side,
        commit_sha=commit_sha,
        body=body or "",
        comment_id=comment_id,
        comment_url=url,
        delivery_id=delivery_id,
        created_at=created_at or now,
        updated_at=updated_at or created_at or now,
    )
    session.add(row)
    session.flush()
    return row


def delete_line_comment(session: Session, comment_id: int, deleted_at: datetime | None = None) -> LineComment | None:
    """Mark a line comment deleted (the row is kept); None if it was never recorded."""
    row = session.scalars(select(LineComment).where(LineComment.comment_id == comment_id)).first()
    if row is not None and row.deleted_at is None:
        _lock(session, row.task_id)
        row.deleted_at = deleted_at or utcnow()
        session.flush()
    return row
