"""Votes and scores, derived from every version of the comments that wrote them (tandem.domain.history)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.domain import ci, history
from tandem.domain.judging.context import CommentContext, Vote
from tandem.domain.judging.rounds import _lock, current_round, refuse_unless_open, round_heads, round_of_comment
from tandem.domain.vocabulary import SIDES, ReviewState
from tandem.infra import metrics
from tandem.infra.errors import Refused
from tandem.infra.models import Judgment, JudgmentReview, Rating, Round

# Versions -----------------------------------------------------------------------------------------
#
# Each version of a comment is logged with its time, and the rater's vote and scores in the
# round are derived from the whole log (tandem.domain.history), so the order of processing never counts.


def _log(ctx: CommentContext, round_id: int, target: str, value: Any) -> None:
    comment = ctx.comment
    history.log_version(
        ctx.session,
        task_id=ctx.task_id,
        round_id=round_id,
        rater_id=comment.author_id,
        comment_id=comment.comment_id,
        target=target,
        written_at=comment.written_at,
        edited=comment.edited_at is not None,
        value=value,
        delivery_id=comment.delivery_id,
    )


def _settle_votes(ctx: CommentContext, round_: Round, rater_id: int) -> tuple[list[history.Slot], dict, list]:
    """Derive the rater's judgments in the round from the log; return (slots, rows, changed)."""
    session = ctx.session
    slots = history.replay(session, round_.id, rater_id, history.VOTE)
    rows = _rows(session, Judgment, round_id=round_.id, rater_id=rater_id)

    def add(slot: history.Slot) -> Judgment:
        # A version in a round that is over judges what the comment's earlier one judged.
        # A vote in the current round judges the PRs' heads as they are (pushes included); one
        # in a round that is over judges that round's heads, or, for a round that kept none (it
        # predates them), what the comment's earlier version judged.
        heads = (ctx.head_sha_a, ctx.head_sha_b)
        if round_.id != current_round(session, ctx.pair.task).id:
            earlier = [row for row in rows if row.comment_id == slot.comment_id]
            heads = round_heads(round_) or ((earlier[-1].head_sha_a, earlier[-1].head_sha_b) if earlier else heads)
        return _add_judgment(ctx, round_.id, Vote(**slot.value), *heads, at=slot.at, delivery_id=slot.delivery_id)

    found, changed = history.settle(session, Judgment, rows, slots, same=_same_vote, add=add)
    if changed:
        _link_ratings(session, round_.id, rater_id)
    if ctx.started_at is not None:  # a vote moved to an earlier version of its comment
        for row in changed:
            row.time_on_task_seconds = _time_on_task(row.voted_at, ctx.started_at)
    return slots, found, changed


def _time_on_task(voted_at: datetime, started_at: datetime | None) -> float | None:
    on_task = (voted_at - started_at).total_seconds() if started_at is not None else None
    return on_task if on_task is None or on_task >= 0 else None


def _rows(session: Session, model: type[Judgment] | type[Rating], **where: Any) -> list:
    return list(
        session.scalars(select(model).filter_by(**where).order_by(model.id).execution_options(populate_existing=True))
    )


def _of_this_version(ctx: CommentContext, slots: list[history.Slot], found: dict) -> Any:
    """The row of the run that ctx.comment's version belongs to, or None if it holds nothing."""
    comment = ctx.comment
    mine = [slot for slot in slots if slot.comment_id == comment.comment_id and slot.holds(comment.written_at)]
    return found[id(mine[-1])] if mine else None


# Judgments ----------------------------------------------------------------------------------------


def record_judgment(ctx: CommentContext, vote: Vote | None) -> tuple[Judgment | None, bool]:
    """Record the comment author's vote as ctx.comment holds it; return (judgment, changed).

    ``vote`` is the comment's /prefer as written at ctx.comment.written_at, the comment's time or
    its edit's; for an edit, its last /prefer, or None if it has none. The vote goes into the
    round the comment acts in, and becomes the rater's current vote there unless something was
    written later: a newer vote supersedes (reason "revote", or "edited" for a version of the
    same comment), an older one is recorded already superseded (or retracted). An edit without
    /prefer retracts the comment's vote if it is current then (reason "edited"); an edit that
    leaves the vote as it was changes nothing, and neither does a version processed again.
    Returns the judgment of this version (None when it holds no vote).
    """
    session, comment = ctx.session, ctx.comment
    _lock(session, ctx.task_id)
    round_ = round_of_comment(ctx)
    if vote is not None:
        refuse_unless_open(round_, comment.written_at)
        if ctx.review.require_ci:
            _refuse_until_ci_finished(session, round_, comment.written_at)
        _refuse_if_reviewed(ctx)
    value = {"verdict": vote.verdict, "strength": vote.strength, "rationale": vote.rationale} if vote else None
    _log(ctx, round_.id, history.VOTE, value)
    slots, found, changed = _settle_votes(ctx, round_, comment.author_id)
    return _of_this_version(ctx, slots, found), bool(changed)


def _refuse_if_reviewed(ctx: CommentContext) -> None:
    """A reviewer of a task's votes may not vote on it or score it too, unless the repository
    allows it (the other order, rating first, is refused when the review is written)."""
    if ctx.review.reviewers_may_rate:
        return
    reviewed = ctx.session.scalar(
        select(JudgmentReview.id)
        .join(Judgment, Judgment.id == JudgmentReview.judgment_id)
        .where(
            Judgment.task_id == ctx.task_id,
            JudgmentReview.reviewer_id == ctx.comment.author_id,
            JudgmentReview.withdrawn_at.is_(None),
        )
        .limit(1)
    )
    if reviewed is not None:
        raise Refused(
            "you reviewed votes on this task, so you cannot vote on it or score it too "
            "(`review.reviewers_may_rate` is off in this repository)"
        )


def _refuse_until_ci_finished(session: Session, round_: Round, written_at: datetime) -> None:
    """With `require_ci`, a round takes votes written once both sides' CI had finished on its heads."""
    finished = ci.finished_at(ci.rounds_ci(session, [round_.id]).get(round_.id, {}))
    if finished is None or written_at < finished:
        raise Refused(
            f"round {round_.number} takes votes once both options' CI has finished (`require_ci` is on in this "
            "repository); Tandem says so on both pull requests when it has"
        )


def undo(ctx: CommentContext) -> tuple[Judgment, bool]:
    """Retract the comment author's vote as it stood when the /undo was written; return
    (judgment, changed).

    The round is the one current when the /undo was written, and the vote the one current then
    (reason "undo"), even if it is processed after the /undo. A vote written after the /undo
    stays current even if it was processed first. Idempotent per comment.
    """
    session, comment = ctx.session, ctx.comment
    _lock(session, ctx.task_id)
    round_ = round_of_comment(ctx)
    _log(ctx, round_.id, history.UNDO, True)
    slots, found, changed = _settle_votes(ctx, round_, comment.author_id)
    mine = ("undo", comment.comment_id)
    undone = [found[id(slot)] for slot in slots if slot.fate and (slot.fate[0], slot.fate[2]) == mine]
    if not undone:
        # Kept in the log: a vote written before it that arrives later is undone then.
        raise Refused(f"you have no vote to undo in round {round_.number}")
    return undone[0], bool(changed)


def current_judgment(session: Session, round_id: int, rater_id: int) -> Judgment | None:
    """The rater's current (not superseded) judgment in a round."""
    return session.scalars(
        select(Judgment)
        .where(Judgment.round_id == round_id, Judgment.rater_id == rater_id, Judgment.superseded_at.is_(None))
        .order_by(Judgment.id.desc())
        .limit(1)
    ).first()


def _add_judgment(
    ctx: CommentContext,
    round_id: int,
    vote: Vote,
    head_sha_a: str | None,
    head_sha_b: str | None,
    *,
    at: datetime,
    delivery_id: str,
) -> Judgment:
    comment = ctx.comment
    judgment = Judgment(
        task_id=ctx.task_id,
        pair_id=ctx.pair.id,
        round_id=round_id,
        rater_id=comment.author_id,
        rater_login=comment.author_login,
        verdict=vote.verdict,
        strength=vote.strength,
        rationale=vote.rationale,
        head_sha_a=head_sha_a,
        head_sha_b=head_sha_b,
        source=comment.source,
        comment_id=comment.comment_id,
        comment_url=comment.url,
        on_side=comment.on_side,
        delivery_id=delivery_id,
        voted_at=at,
        time_on_task_seconds=_time_on_task(at, ctx.started_at),
        review_state=ReviewState.PENDING,
    )
    judgment.ci_state_a, judgment.ci_state_b = ci.heads_state(ctx.session, ctx.task_id, head_sha_a, head_sha_b)
    ctx.session.add(judgment)
    ctx.session.flush()
    metrics.count_on_commit(ctx.session, metrics.JUDGMENTS)
    return judgment


def _same_vote(judgment: Judgment, value: dict) -> bool:
    return (judgment.verdict, judgment.strength, judgment.rationale) == (
        value["verdict"],
        value["strength"],
        value["rationale"],
    )


# Ratings ------------------------------------------------------------------------------------------


def record_ratings(ctx: CommentContext, side: str, scores: dict[str, int]) -> tuple[list[Rating], bool]:
    """Record the comment author's scores of one side, one row per axis; return (rows, changed).

    Each score is placed by when it was written, as a vote is (see ``record_judgment``): it
    supersedes the rater's older score of the same side and axis in the round (reason
    "revote"), or is recorded already superseded by a newer one. Scores this version of the
    comment already recorded are not recorded again.
    """
    side = _checked_side(side)
    checked = dict(ctx.rubric.score(axis, score) for axis, score in scores.items())
    if not checked:
        raise Refused("give at least one score")
    _refuse_if_reviewed(ctx)
    return _write_scores(ctx, {history.score_target(side, axis): score for axis, score in checked.items()})


def ratings_edited(ctx: CommentContext, scores: dict[str, dict[str, int]]) -> tuple[list[Rating], bool]:
    """Apply an edit of ctx.comment whose /rate commands now give ``scores`` ({side: {axis:
    score}}); return (the rows of the scores it gives, changed).

    A score the edit changed is a new version (reason "edited"), placed by the edit's time; one
    it dropped is retracted if current then; one it left as it was changes nothing.
    """
    wanted: dict[str, int] = {}
    for side, axes in scores.items():
        side = _checked_side(side)
        for axis, score in axes.items():
            axis, score = ctx.rubric.score(axis, score)
            wanted[history.score_target(side, axis)] = score
    return _write_scores(ctx, wanted, whole_comment=True)


def _write_scores(
    ctx: CommentContext, wanted: dict[str, int], *, whole_comment: bool = False
) -> tuple[list[Rating], bool]:
    """Write one version of each score (by target, "side:axis") of ctx.comment. ``whole_comment``:
    ``wanted`` is everything this version gives, so the comment's other scores are no longer given."""
    session, comment = ctx.session, ctx.comment
    _lock(session, ctx.task_id)
    round_ = round_of_comment(ctx)
    if wanted:
        refuse_unless_open(round_, comment.written_at)
    targets = list(wanted)
    if whole_comment:
        _log(ctx, round_.id, history.SCORES, sorted(wanted))
        known = (target for _round, _rater, target in history.targets_of(session, comment.comment_id))
        targets += [target for target in known if history.is_score(target) and target not in wanted]
    rows, changed = [], False
    for target in targets:
        if target in wanted:
            _log(ctx, round_.id, target, wanted[target])
        slots, found, wrote = _settle_scores(ctx, round_.id, comment.author_id, target)
        changed |= bool(wrote)
        row = _of_this_version(ctx, slots, found)
        if row is not None:
            rows.append(row)
    return rows, changed


def _settle_scores(ctx: CommentContext, round_id: int, rater_id: int, target: str) -> tuple[list, dict, list]:
    """Derive the rater's ratings of one side and axis in the round from the log."""
    side, axis = history.split_score_target(target)
    slots = history.replay(ctx.session, round_id, rater_id, target)
    rows = _rows(ctx.session, Rating, round_id=round_id, rater_id=rater_id, side=side, axis=axis)
    found, changed = history.settle(
        ctx.session,
        Rating,
        rows,
        slots,
        same=lambda rating, value: rating.score == value,
        add=lambda slot: _add_rating(ctx, round_id, side, axis, slot),
    )
    if changed:
        _link_ratings(ctx.session, round_id, rater_id)
    return slots, found, changed


def current_ratings(session: Session, round_id: int, rater_id: int) -> dict[str, dict[str, int]]:
    """The rater's current scores in a round: {side: {axis: score}}."""
    rows = session.execute(
        select(Rating.side, Rating.axis, Rating.score)
        .where(Rating.round_id == round_id, Rating.rater_id == rater_id, Rating.superseded_at.is_(None))
        .order_by(Rating.id)
    )
    scores: dict[str, dict[str, int]] = {}
    for side, axis, score in rows:
        scores.setdefault(side, {})[axis] = score
    return scores


def _add_rating(ctx: CommentContext, round_id: int, side: str, axis: str, slot: history.Slot) -> Rating:
    """A new score, written at the slot's time (Rating.created_at)."""
    comment = ctx.comment
    rating = Rating(
        task_id=ctx.task_id,
        round_id=round_id,
        rater_id=comment.author_id,
        rater_login=comment.author_login,
        side=side,
        axis=axis,
        score=slot.value,
        comment_id=comment.comment_id,
        delivery_id=slot.delivery_id,
        created_at=slot.at,
    )
    ctx.session.add(rating)
    ctx.session.flush()
    return rating


def _link_ratings(session: Session, round_id: int, rater_id: int) -> None:
    """Link each of the rater's scores in the round to the latest vote they had written by then."""
    ratings = _rows(session, Rating, round_id=round_id, rater_id=rater_id)
    if not ratings:  # (most votes: no scores, and then no need to read the votes again)
        return
    votes = _rows(session, Judgment, round_id=round_id, rater_id=rater_id)
    votes.sort(key=lambda judgment: (judgment.voted_at, judgment.comment_id, judgment.id))
    for rating in ratings:
        written = (rating.created_at, rating.comment_id)
        before = [judgment for judgment in votes if (judgment.voted_at, judgment.comment_id) <= written]
        wanted = before[-1].id if before else None
        if rating.judgment_id != wanted:
            rating.judgment_id = wanted
    session.flush()


def _checked_side(side: str) -> str:
    letter = str(side).upper()
    if letter not in SIDES:
        raise Refused("the side must be A or B")
    return letter
