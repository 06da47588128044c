"""The judging domain: votes, ratings, follow-up rounds, reviews and line comments.

Pure domain on a SQLAlchemy Session: no GitHub, no HTTP, no queue. The worker parses a comment
(tandem.commands), builds a CommandContext and calls in, inside its delivery's transaction.

Three rules hold everywhere:

* Nothing is deleted. A newer version of a judgment or rating supersedes the older one
  (superseded_at, superseded_reason: revote, edited, undo, deleted); a retraction is a
  supersession by nothing. A follow-up round whose comment is deleted is withdrawn, not removed.
* Every write is idempotent per comment: processing the same comment (or delivery) twice records
  it once, and replaying an old comment never undoes what later comments did.
* Writes on one task are serialized by locking the task's row (PostgreSQL; SQLite serializes
  every write anyway), so concurrent workers cannot leave a rater with two current votes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tandem.db import utcnow
from tandem.errors import TandemError
from tandem.models import SIDES, Judgment, JudgmentReview, LineComment, Pair, Rating, Round, Task

VERDICTS = ("A", "B", "tie", "neither")
STRENGTHS = ("slightly", "clearly", "much")
DEFAULT_STRENGTH = "clearly"
DEFAULT_AXES = ("correctness", "security", "reliability", "maintainability")  # as tandem.repo_config
DEFAULT_SCALE = (1, 5)
REVIEW_DECISIONS = ("approved", "rejected")

_AXIS_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_INTEGER = re.compile(r"[+-]?[0-9]+")


class CommandError(TandemError):
    """A command that cannot be carried out. The message is written for the person who typed it.

    ``command`` is the command as written (``/prefer C``); the command runner fills it in, and
    ``str()`` then reads "`/prefer C`: the side must be A, B, tie or neither".
    """

    def __init__(self, message: str, command: str | None = None):
        super().__init__(message)
        self.message = message
        self.command = command

    def __str__(self) -> str:
        return f"`{self.command}`: {self.message}" if self.command else self.message


@dataclass(frozen=True)
class Rubric:
    """The axes a repository's raters score with /rate, and the scale of the scores."""

    axes: tuple[str, ...] = DEFAULT_AXES
    scale: tuple[int, int] = DEFAULT_SCALE

    def __post_init__(self) -> None:
        axes = tuple(str(axis).strip().lower() for axis in self.axes)
        for axis in axes:
            if not _AXIS_NAME.fullmatch(axis):
                raise ValueError(f"rubric axis {axis!r}: use one word of letters, digits, '_' or '-'")
        if not axes or len(set(axes)) != len(axes):
            raise ValueError("a rubric needs at least one axis, each named once")
        low, high = (int(bound) for bound in self.scale)
        if low >= high:
            raise ValueError(f"rubric scale {low}-{high}: the low end must be below the high end")
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "scale", (low, high))

    @classmethod
    def of(cls, config: Any = None) -> Rubric:
        """The rubric of a repository's config (tandem.repo_config.RepoConfig), of anything with
        ``axes`` and ``scale`` (such as RepoConfig.rubric), or the default one for None."""
        if config is None or isinstance(config, Rubric):
            return config or cls()
        if hasattr(config, "rubric"):
            return cls.of(config.rubric)
        return cls(tuple(config.axes), tuple(config.scale))

    @classmethod
    def for_task(cls, task: Task, default: Any = None) -> Rubric:
        """The task's own axes if it has some (Task.rubric), else the default's; the default's scale.
        ``default``: as for ``Rubric.of``."""
        default = cls.of(default)
        return cls(tuple(task.rubric), default.scale) if task.rubric else default

    def score(self, axis: str, value: str | int) -> tuple[str, int]:
        """Return (axis, score) checked against the rubric, or raise a CommandError naming it."""
        name = axis.strip().lower()
        if name not in self.axes:
            raise CommandError(f"unknown axis `{axis}`; this repository's axes are {', '.join(self.axes)}")
        low, high = self.scale
        text = str(value).strip()
        if not (text.isascii() and _INTEGER.fullmatch(text)) or not low <= int(text) <= high:
            raise CommandError(f"{name} must be an integer from {low} to {high}")
        return name, int(text)


@dataclass(frozen=True)
class CommentRef:
    """Provenance of the comment (or review body) a command came from."""

    comment_id: int
    url: str | None
    delivery_id: str
    source: str  # "comment" (issue comment) or "review" (a pull request review's body)
    author_id: int
    author_login: str
    created_at: datetime
    on_side: str  # "A" or "B": the pull request it was posted on
    edited_at: datetime | None = None  # set when handling an edit: the edited version's time

    @property
    def written_at(self) -> datetime:
        return self.edited_at or self.created_at


@dataclass
class CommandContext:
    """What a command acts on: the pair, its current round, and the comment it came from."""

    session: Session
    pair: Pair
    round: Round
    comment: CommentRef
    rubric: Rubric = field(default_factory=Rubric)
    head_sha_a: str | None = None
    head_sha_b: str | None = None
    started_at: datetime | None = None  # when the rater started on the task, for time on task

    @classmethod
    def for_pair(
        cls,
        session: Session,
        pair: Pair,
        comment: CommentRef,
        *,
        rubric: Any = None,
        started_at: datetime | None = None,
    ) -> CommandContext:
        """A context on the task's current round, with the sides' recorded head SHAs.

        ``rubric``: the repository's RepoConfig, its rubric, or a Rubric (see ``Rubric.of``); the
        task's own axes, if it has some, take precedence.
        """
        heads = {side.letter: side.head_sha for side in pair.sides}
        return cls(
            session=session,
            pair=pair,
            round=current_round(session, pair.task),
            comment=comment,
            rubric=Rubric.for_task(pair.task, rubric),
            head_sha_a=heads.get("A"),
            head_sha_b=heads.get("B"),
            started_at=started_at,
        )

    @property
    def task_id(self) -> int:
        return self.pair.task_id


@dataclass(frozen=True)
class Vote:
    """A /prefer: the verdict, its strength (A and B only) and the rationale."""

    verdict: str
    strength: str | None = None
    rationale: str = ""

    def __post_init__(self) -> None:
        verdict, strength = _checked_vote(self.verdict, self.strength)
        object.__setattr__(self, "verdict", verdict)
        object.__setattr__(self, "strength", strength)
        object.__setattr__(self, "rationale", (self.rationale or "").strip())

    def describe(self) -> str:
        if self.verdict == "tie":
            return "a **tie** (A and B are equally good)"
        if self.verdict == "neither":
            return "**neither** (both are unacceptable)"
        return f"**{self.verdict}** ({self.strength})"


@dataclass(frozen=True)
class Progress:
    """The current round's current judgments against the number of raters a task needs."""

    round: int
    required: int
    judgments: int
    approved: int
    rejected: int
    pending: int
    raters: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return self.judgments >= self.required and self.approved == self.judgments


# Rounds -----------------------------------------------------------------------------------


def ensure_first_round(session: Session, task: Task) -> Round:
    """Round 1, which holds the task's prompt; created on first use."""
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
    """The highest-numbered round that was not withdrawn (round 1 is created if absent)."""
    return _latest_round(session, task.id) or ensure_first_round(session, task)


def record_followup(ctx: CommandContext, text: str) -> Round:
    """Start the next round with a follow-up prompt for both models. Idempotent per comment."""
    return _record_followup(ctx, text)[0]


def _record_followup(ctx: CommandContext, text: str) -> tuple[Round, bool]:
    prompt = (text or "").strip()
    if not prompt:
        raise CommandError("write the follow-up prompt after `/followup`, on the same line or on the lines below")
    session, comment = ctx.session, ctx.comment
    _lock(session, ctx.task_id)
    existing = session.scalars(select(Round).where(Round.comment_id == comment.comment_id)).first()
    if existing is not None:
        return existing, False
    ensure_first_round(session, ctx.pair.task)
    last = session.scalar(select(func.max(Round.number)).where(Round.task_id == ctx.task_id))
    new = Round(
        task_id=ctx.task_id,
        number=last + 1,
        prompt=prompt,
        author_id=comment.author_id,
        author_login=comment.author_login,
        comment_id=comment.comment_id,
        comment_url=comment.url,
        delivery_id=comment.delivery_id,
    )
    session.add(new)
    session.flush()
    return new, True


# Judgments --------------------------------------------------------------------------------


def record_judgment(ctx: CommandContext, verdict: str, strength: str | None = None, rationale: str = "") -> Judgment:
    """Record the comment author's vote in the context's round.

    It supersedes the rater's current vote in that round (reason "revote"). If this comment
    already recorded the same vote, nothing is written and that judgment is returned.
    """
    return _record_judgment(ctx, Vote(verdict, strength, rationale))[0]


def _record_judgment(ctx: CommandContext, vote: Vote) -> tuple[Judgment, bool]:
    _lock(ctx.session, ctx.task_id)
    for earlier in reversed(_from_comment(ctx.session, Judgment, ctx.comment.comment_id)):
        if _same_vote(earlier, vote):
            return earlier, False  # a replay of this comment, or of an old version of it
    return _revote(ctx, ctx.round.id, vote), True


def _revote(ctx: CommandContext, round_id: int, vote: Vote) -> Judgment:
    """Add the vote, superseding the rater's current one in the round."""
    previous = current_judgment(ctx.session, round_id, ctx.comment.author_id)
    judgment = _add_judgment(ctx, round_id, vote, ctx.head_sha_a, ctx.head_sha_b)
    if previous is not None:
        _supersede(previous, "revote", ctx.comment.comment_id, by=judgment)
    return judgment


def comment_edited(ctx: CommandContext, vote: Vote | None) -> Judgment | None:
    """Apply an edit of ctx.comment whose body now holds ``vote`` (None: it holds no /prefer).

    The comment's current judgment is superseded by the new version (reason "edited"), or
    retracted if the vote is gone; an unchanged vote writes nothing. A vote added by the edit is
    recorded as a new vote. An edit does not revive a judgment that a later vote, an /undo or a
    deletion already ended. Returns the comment's current judgment after the edit, if any.
    """
    return _comment_edited(ctx, vote)[0]


def _comment_edited(ctx: CommandContext, vote: Vote | None) -> tuple[Judgment | None, bool]:
    session, comment = ctx.session, ctx.comment
    _lock(session, ctx.task_id)
    versions = _from_comment(session, Judgment, comment.comment_id)
    latest = versions[-1] if versions else None
    if latest is None or (latest.superseded_reason == "edited" and latest.superseded_by_id is None):
        # The comment has no vote (never had, or an earlier edit removed it): a new vote.
        return (_revote(ctx, latest.round_id if latest else ctx.round.id, vote), True) if vote else (None, False)
    if latest.superseded_at is not None:
        return None, False  # ended by a later vote, an /undo or a deletion
    old = latest
    if vote is None:
        _supersede(old, "edited", comment.comment_id)
        return None, True
    if _same_vote(old, vote):
        return old, False
    # The edited version judges what the original judged: its round, and its heads if that
    # round is over.
    same_round = old.round_id == ctx.round.id
    heads = (ctx.head_sha_a, ctx.head_sha_b) if same_round else (old.head_sha_a, old.head_sha_b)
    new = _add_judgment(ctx, old.round_id, vote, *heads)
    _supersede(old, "edited", comment.comment_id, by=new)
    return new, True


def undo(ctx: CommandContext) -> Judgment:
    """Retract the comment author's current vote in the context's round (reason "undo")."""
    return _undo(ctx)[0]


def _undo(ctx: CommandContext) -> tuple[Judgment, bool]:
    session, comment = ctx.session, ctx.comment
    _lock(session, ctx.task_id)
    done = session.scalars(
        select(Judgment).where(
            Judgment.superseded_by_comment_id == comment.comment_id, Judgment.superseded_reason == "undo"
        )
    ).first()
    if done is not None:
        return done, False
    current = current_judgment(session, ctx.round.id, comment.author_id)
    if current is None:
        raise CommandError(f"you have no vote to undo in round {ctx.round.number}")
    _supersede(current, "undo", comment.comment_id)
    return current, True


def current_judgment(session: Session, round_id: int, rater_id: int) -> Judgment | None:
    """The rater's current (not superseded) judgment in a round."""
    return session.scalars(
        select(Judgment)
        .where(Judgment.round_id == round_id, Judgment.rater_id == rater_id, Judgment.superseded_at.is_(None))
        .order_by(Judgment.id.desc())
        .limit(1)
    ).first()


def _add_judgment(
    ctx: CommandContext, round_id: int, vote: Vote, head_sha_a: str | None, head_sha_b: str | None
) -> Judgment:
    comment = ctx.comment
    voted_at = comment.written_at
    on_task = (voted_at - ctx.started_at).total_seconds() if ctx.started_at is not None else None
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
        delivery_id=comment.delivery_id,
        voted_at=voted_at,
        time_on_task_seconds=on_task if on_task is None or on_task >= 0 else None,
        review_state="pending",
    )
    ctx.session.add(judgment)
    ctx.session.flush()
    return judgment


def _supersede(old: Judgment, reason: str, comment_id: int | None, *, by: Judgment | None = None) -> None:
    old.superseded_at = utcnow()
    old.superseded_reason = reason
    old.superseded_by_id = by.id if by is not None else None
    old.superseded_by_comment_id = comment_id


def _same_vote(judgment: Judgment, vote: Vote) -> bool:
    return (judgment.verdict, judgment.strength, judgment.rationale) == (vote.verdict, vote.strength, vote.rationale)


def _checked_vote(verdict: str, strength: str | None) -> tuple[str, str | None]:
    verdict = {"a": "A", "b": "B", "tie": "tie", "neither": "neither"}.get(str(verdict).lower(), "")
    if not verdict:
        raise CommandError("the side must be A, B, tie or neither")
    if verdict in ("tie", "neither"):
        if strength is not None:
            raise CommandError(f"`/prefer {verdict}` takes no strength")
        return verdict, None
    strength = (strength or DEFAULT_STRENGTH).lower()
    if strength not in STRENGTHS:
        raise CommandError("the strength must be slightly, clearly or much; put your reasons on the lines below")
    return verdict, strength


# Ratings ----------------------------------------------------------------------------------


def record_ratings(ctx: CommandContext, side: str, scores: dict[str, int]) -> list[Rating]:
    """Record the comment author's scores of one side in the context's round, one row per axis.

    A newer score of the same side and axis supersedes the rater's older one (reason "revote").
    Scores this comment already recorded are not recorded again.
    """
    return _record_ratings(ctx, side, scores)[0]


def _record_ratings(ctx: CommandContext, side: str, scores: dict[str, int]) -> tuple[list[Rating], bool]:
    side = _checked_side(side)
    checked = dict(ctx.rubric.score(axis, score) for axis, score in scores.items())
    if not checked:
        raise CommandError("give at least one score")
    session, comment = ctx.session, ctx.comment
    _lock(session, ctx.task_id)
    earlier = _from_comment(session, Rating, comment.comment_id)
    rows, created = [], False
    for axis, score in checked.items():
        replay = [r for r in earlier if (r.side, r.axis, r.score) == (side, axis, score)]
        if replay:
            rows.append(replay[-1])
        else:
            rows.append(_add_rating(ctx, ctx.round.id, side, axis, score))
            created = True
    return rows, created


def ratings_edited(ctx: CommandContext, scores: dict[str, dict[str, int]]) -> list[Rating]:
    """Apply an edit of ctx.comment whose /rate commands now give ``scores`` ({side: {axis: score}}).

    Each of the comment's current ratings that changed is superseded by the new score (reason
    "edited"), or retracted if the edit dropped it; scores the edit added are recorded as new
    ones. Ratings a later comment superseded stay as they are. Returns the comment's current
    ratings after the edit.
    """
    return _ratings_edited(ctx, scores)[0]


def _ratings_edited(ctx: CommandContext, scores: dict[str, dict[str, int]]) -> tuple[list[Rating], bool]:
    wanted = {}
    for side, axes in scores.items():
        side = _checked_side(side)
        for axis, score in axes.items():
            axis, score = ctx.rubric.score(axis, score)
            wanted[(side, axis)] = score
    session, comment = ctx.session, ctx.comment
    _lock(session, ctx.task_id)
    versions = _from_comment(session, Rating, comment.comment_id)
    latest = {(r.side, r.axis): r for r in versions}  # oldest first, so the latest wins
    current = {key: r for key, r in latest.items() if r.superseded_at is None}
    changed = False
    for key, rating in current.items():
        if wanted.get(key) != rating.score:
            rating.superseded_at, rating.superseded_reason = utcnow(), "edited"
            changed = True
    kept = [rating for key, rating in current.items() if wanted.get(key) == rating.score]
    for key, score in wanted.items():
        if key in current and current[key].score == score:
            continue
        if key in current:
            kept.append(_add_rating(ctx, current[key].round_id, *key, score))
        elif key not in latest:
            kept.append(_add_rating(ctx, ctx.round.id, *key, score))
        elif latest[key].superseded_reason == "edited":  # an earlier edit dropped it: back again
            kept.append(_add_rating(ctx, latest[key].round_id, *key, score))
        else:
            continue  # superseded by a later comment's rating, or deleted: the edit does not revive it
        changed = True
    return sorted(kept, key=lambda rating: rating.id), changed


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


def _add_rating(ctx: CommandContext, round_id: int, side: str, axis: str, score: int) -> Rating:
    session, comment = ctx.session, ctx.comment
    previous = session.scalars(
        select(Rating).where(
            Rating.round_id == round_id,
            Rating.rater_id == comment.author_id,
            Rating.side == side,
            Rating.axis == axis,
            Rating.superseded_at.is_(None),
        )
    ).all()
    for rating in previous:
        rating.superseded_at, rating.superseded_reason = utcnow(), "revote"
    judgment = current_judgment(session, round_id, comment.author_id)
    rating = Rating(
        task_id=ctx.task_id,
        round_id=round_id,
        judgment_id=judgment.id if judgment is not None else None,
        rater_id=comment.author_id,
        rater_login=comment.author_login,
        side=side,
        axis=axis,
        score=score,
        comment_id=comment.comment_id,
        delivery_id=comment.delivery_id,
    )
    session.add(rating)
    session.flush()
    return rating


def _checked_side(side: str) -> str:
    letter = str(side).upper()
    if letter not in SIDES:
        raise CommandError("the side must be A or B")
    return letter


# Reviews ----------------------------------------------------------------------------------


def review(
    ctx: CommandContext, decision: str, target_login: str | None = None, reason: str = ""
) -> JudgmentReview:
    """A reviewer's decision on a rater's current judgment in the context's round.

    The judgment is the one of ``target_login``'s, or, without a login, the only judgment in the
    round still waiting for review. Reviewing one's own judgment is refused. Idempotent per
    comment.
    """
    return _review(ctx, decision, target_login, reason)[0]


def _review(
    ctx: CommandContext, decision: str, target_login: str | None, reason: str
) -> tuple[JudgmentReview, bool]:
    if decision not in REVIEW_DECISIONS:
        raise ValueError(f"decision must be one of {REVIEW_DECISIONS}, not {decision!r}")
    reason = (reason or "").strip()
    verb = "approve" if decision == "approved" else "reject"
    if decision == "rejected" and not reason:
        raise CommandError("say why, e.g. `/reject @rater <reason>`; the reason is shown to the rater")
    session, comment, number = ctx.session, ctx.comment, ctx.round.number
    login = target_login.lstrip("@") if target_login else None
    _lock(session, ctx.task_id)

    done = select(JudgmentReview).join(Judgment).where(JudgmentReview.comment_id == comment.comment_id)
    if login:
        done = done.where(func.lower(Judgment.rater_login) == login.lower())
    existing = session.scalars(done.order_by(JudgmentReview.id.desc())).first()
    if existing is not None:
        return existing, False

    current = select(Judgment).where(Judgment.round_id == ctx.round.id, Judgment.superseded_at.is_(None))
    if login:
        target = session.scalars(
            current.where(func.lower(Judgment.rater_login) == login.lower()).order_by(Judgment.id.desc())
        ).first()
        if target is None:
            raise CommandError(f"@{login} has no vote in round {number}")
    else:
        waiting = session.scalars(current.where(Judgment.review_state == "pending").order_by(Judgment.id)).all()
        if not waiting:
            raise CommandError(
                f"no vote is waiting for review in round {number}; to change a decision, name the rater: "
                f"`/{verb} @rater`"
            )
        if len(waiting) > 1:
            logins = ", ".join(f"@{j.rater_login}" for j in waiting)
            example = f"/{verb} @{waiting[0].rater_login}" + (" <reason>" if verb == "reject" else "")
            raise CommandError(
                f"{len(waiting)} raters have votes waiting for review in round {number} ({logins}); "
                f"name one, e.g. `{example}`"
            )
        target = waiting[0]
    if target.rater_id == comment.author_id:
        raise CommandError("you cannot review your own vote")
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
    target.review_state = decision
    session.flush()
    return row, True


# Deleted comments -------------------------------------------------------------------------


def comment_deleted(session: Session, comment_id: int) -> int:
    """Retract everything a deleted comment did that is still in force; return how many records.

    Its current judgments and ratings are superseded (reason "deleted"), its follow-up round is
    withdrawn, and its reviews are withdrawn (the judgment's review state falls back to the
    latest remaining review, or pending). An /undo is not reversed by deleting its comment.
    """
    task_ids = set(session.scalars(select(Judgment.task_id).where(Judgment.comment_id == comment_id)))
    task_ids |= set(session.scalars(select(Rating.task_id).where(Rating.comment_id == comment_id)))
    task_ids |= set(session.scalars(select(Round.task_id).where(Round.comment_id == comment_id)))
    task_ids |= set(
        session.scalars(select(Judgment.task_id).join(JudgmentReview).where(JudgmentReview.comment_id == comment_id))
    )
    for task_id in sorted(task_ids):
        _lock(session, task_id)
    fresh = {"populate_existing": True}
    count = 0
    for judgment in session.scalars(
        select(Judgment)
        .where(Judgment.comment_id == comment_id, Judgment.superseded_at.is_(None))
        .execution_options(**fresh)
    ):
        _supersede(judgment, "deleted", comment_id)
        count += 1
    for rating in session.scalars(
        select(Rating).where(Rating.comment_id == comment_id, Rating.superseded_at.is_(None)).execution_options(**fresh)
    ):
        rating.superseded_at, rating.superseded_reason = utcnow(), "deleted"
        count += 1
    for round_ in session.scalars(
        select(Round).where(Round.comment_id == comment_id, Round.withdrawn_at.is_(None)).execution_options(**fresh)
    ):
        round_.withdrawn_at, round_.withdrawn_reason = utcnow(), "deleted"
        count += 1
    withdrawn = session.scalars(
        select(JudgmentReview)
        .where(JudgmentReview.comment_id == comment_id, JudgmentReview.withdrawn_at.is_(None))
        .execution_options(**fresh)
    ).all()
    for row in withdrawn:
        row.withdrawn_at = utcnow()
        count += 1
    session.flush()
    for judgment_id in {row.judgment_id for row in withdrawn}:
        judgment = session.get(Judgment, judgment_id)
        latest = session.scalars(
            select(JudgmentReview)
            .where(JudgmentReview.judgment_id == judgment_id, JudgmentReview.withdrawn_at.is_(None))
            .order_by(JudgmentReview.id.desc())
        ).first()
        judgment.review_state = latest.decision if latest is not None else "pending"
    session.flush()
    return count


# Line comments ----------------------------------------------------------------------------


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


# Progress ---------------------------------------------------------------------------------


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
        approved=states.count("approved"),
        rejected=states.count("rejected"),
        pending=states.count("pending"),
        raters=tuple(login for login, _ in rows),
    )


# Helpers ----------------------------------------------------------------------------------


def _lock(session: Session, task_id: int) -> None:
    """Serialize writers on one task: lock its row until the transaction ends (PostgreSQL).

    SQLite has no row locks and needs none: it lets one transaction write at a time.
    """
    session.execute(select(Task.id).where(Task.id == task_id).with_for_update())


def _latest_round(session: Session, task_id: int) -> Round | None:
    return session.scalars(
        select(Round)
        .where(Round.task_id == task_id, Round.withdrawn_at.is_(None))
        .order_by(Round.number.desc())
        .limit(1)
    ).first()


def round_number(session: Session, round_id: int) -> int:
    """The number of a round, by id."""
    return session.get(Round, round_id).number


def _from_comment(session: Session, model: type, comment_id: int) -> Sequence:
    """Every row a comment has written of ``model``, oldest first, as the database has it now."""
    return session.scalars(
        select(model)
        .where(model.comment_id == comment_id)
        .order_by(model.id)
        .execution_options(populate_existing=True)
    ).all()


__all__ = [
    "CommandContext",
    "CommandError",
    "CommentRef",
    "Progress",
    "Rubric",
    "Vote",
    "comment_deleted",
    "comment_edited",
    "current_judgment",
    "current_ratings",
    "current_round",
    "delete_line_comment",
    "ensure_first_round",
    "progress",
    "ratings_edited",
    "record_followup",
    "record_judgment",
    "record_line_comment",
    "record_ratings",
    "review",
    "undo",
]
