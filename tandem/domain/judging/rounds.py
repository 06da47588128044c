"""Rounds: the first holds the task's prompt, each /followup starts the next; and the task lock."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from tandem.domain import history
from tandem.domain.judging.context import CommentContext
from tandem.domain.quoting import code_span
from tandem.domain.rounds import lifecycle
from tandem.domain.vocabulary import SIDES, TaskStatus
from tandem.infra.db import utcnow
from tandem.infra.errors import Refused, known
from tandem.infra.models import CommandVersion, Round, Task

# Rounds -------------------------------------------------------------------------------------------


def ensure_first_round(session: Session, task: Task) -> Round:
    """Round 1, which holds the task's prompt. A task gets it when submitted (tandem.domain.tasks); it is
    created here only for a task that predates rounds."""
    first = session.scalars(select(Round).where(Round.task_id == task.id, Round.number == 1)).first()
    if first is None:
        _lock(session, task.id)
        first = session.scalars(
            select(Round).where(Round.task_id == task.id, Round.number == 1).execution_options(populate_existing=True)
        ).first()
    if first is None:
        first = Round(task_id=task.id, number=1, prompt=task.prompt, author_login=task.submitted_by)
        session.add(first)
        session.flush()
    return first


def current_round(session: Session, task: Task) -> Round:
    """The highest-numbered round that was not withdrawn and reached the PRs, else round 1."""
    return _latest_round(session, task.id) or ensure_first_round(session, task)


def record_followup(ctx: CommentContext, text: str) -> tuple[Round, bool]:
    """Start the next round with a follow-up prompt for both models; return (round, created).

    The round starts when the comment was written (Round.created_at): commands written before
    it act in the round before, however late they are processed. What was recorded stays in its
    round: a vote written after the follow-up but processed before it stays in the round before.
    Idempotent per comment.
    """
    prompt = (text or "").strip()
    if not prompt:
        raise Refused("write the follow-up prompt after `/followup`, on the same line or on the lines below")
    session, comment = ctx.session, ctx.comment
    _lock(session, ctx.task_id)
    existing = session.scalars(select(Round).where(Round.comment_id == comment.comment_id)).first()
    if existing is not None:
        return existing, False
    ensure_first_round(session, ctx.pair.task)
    _check_may_start(ctx)
    last = session.scalar(select(func.max(Round.number)).where(Round.task_id == ctx.task_id))
    new = Round(
        task_id=ctx.task_id,
        number=known(last, "the task's last round") + 1,  # ensure_first_round made one
        prompt=prompt,
        author_id=comment.author_id,
        author_login=comment.author_login,
        comment_id=comment.comment_id,
        comment_url=comment.url,
        delivery_id=comment.delivery_id,
        created_at=comment.written_at,
    )
    if history.is_deleted(session, comment.comment_id):  # processed after its deletion
        new.withdrawn_at, new.withdrawn_reason = utcnow(), "deleted"
    session.add(new)
    session.flush()
    if new.withdrawn_at is None:
        lifecycle.await_outputs(session, new, timeout=ctx.followups.round_timeout)
    return new, new.withdrawn_at is None


def _check_may_start(ctx: CommentContext) -> None:
    """At most one round awaits outputs, none starts on a closed task, and none past max_rounds."""
    task = ctx.pair.task
    if task.status in (TaskStatus.CLOSED, TaskStatus.FAILED) or ctx.pair.closed_at is not None:
        raise Refused("this task is closed: it takes no more follow-ups")
    live = [r for r in task.rounds if r.withdrawn_at is None and r.closed_reason not in lifecycle.NEVER_OPENED]
    # A round being put on the PRs counts even if its follow-up was deleted meanwhile: its commits
    # still land, and a round started before them would build on the heads they replace.
    if pending := next((r for r in task.rounds if r.status in lifecycle.WAITING), None):
        who = f" (asked by {code_span(pending.author_login)})" if pending.author_login else ""
        raise Refused(
            f"round {pending.number}{who} is still waiting for the models' answers: write the next follow-up "
            "once it is ready on the PRs, or after it expires"
        )
    if len(live) >= ctx.followups.max_rounds:
        raise Refused(
            f"this task has had its {ctx.followups.max_rounds} rounds (`followups.max_rounds` in .github/tandem.yml)"
        )


def _round_at(session: Session, task: Task, when: datetime) -> Round:
    """The round that was current at ``when``: the latest follow-up round started by then, not
    withdrawn and not one that never reached the PRs (expired, failed), else round 1."""
    # Round 1 or the latest such follow-up, in one query; none: a task that predates rounds.
    found = session.scalars(
        select(Round)
        .where(
            Round.task_id == task.id,
            or_(
                Round.number == 1,
                and_(Round.withdrawn_at.is_(None), _reached_the_prs(), Round.created_at <= when),
            ),
        )
        .order_by(Round.number.desc())
        .limit(1)
    ).first()
    return found or ensure_first_round(session, task)


def round_of_comment(ctx: CommentContext) -> Round:
    """The round ctx.comment acts in: the one it already wrote versions in, else the one that
    was current when it was written. Call with the task locked."""
    session, comment = ctx.session, ctx.comment
    round_id = session.scalar(
        select(CommandVersion.round_id).where(CommandVersion.comment_id == comment.comment_id).limit(1)
    )
    if round_id is not None:
        return session.get_one(Round, round_id)
    return _round_at(session, ctx.pair.task, comment.created_at)


# Helpers ------------------------------------------------------------------------------------------


_lock = lifecycle.lock_task  # serializes writers on one task


def _reached_the_prs():
    return or_(Round.closed_reason.is_(None), Round.closed_reason.not_in(lifecycle.NEVER_OPENED))


def refuse_unless_open(round_: Round, written_at: datetime) -> None:
    """Votes and scores count only in an open round: one written while its round awaited the
    models' answers (or was being put on the PRs) judged code that was not there yet."""
    if round_.number == 1:  # open with the PRs: nothing to judge before them
        return
    opened = round_.opened_at.replace(microsecond=0) if round_.opened_at is not None else None
    if round_.status in lifecycle.WAITING or (opened is not None and written_at < opened):
        raise Refused(
            f"round {round_.number} is waiting for the models' answers: votes count once it is ready on the PRs"
        )


def round_heads(round_: Round) -> tuple[str | None, str | None] | None:
    """(A, B) head SHAs the round's votes judge, if recorded."""
    a, b = (side.head_sha if (side := round_.side(letter)) else None for letter in SIDES)
    return (a, b) if a and b else None


def _latest_round(session: Session, task_id: int) -> Round | None:
    return session.scalars(
        select(Round)
        .where(Round.task_id == task_id, Round.withdrawn_at.is_(None), _reached_the_prs())
        .order_by(Round.number.desc())
        .limit(1)
    ).first()


def round_number(session: Session, round_id: int) -> int:
    """The number of a round, by id."""
    return session.get_one(Round, round_id).number
