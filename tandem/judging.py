"""The judging domain: votes, ratings, follow-up rounds, reviews and line comments.

Pure domain on a SQLAlchemy Session: no GitHub, no HTTP, no queue. The worker parses a comment
(tandem.commands), builds a CommandContext and calls in, inside its delivery's transaction.

Four rules hold everywhere:

* Nothing is deleted. A newer version of a judgment or rating supersedes the older one
  (superseded_at, superseded_reason: revote, edited, undo, deleted); a retraction is a
  supersession by nothing. A follow-up round whose comment is deleted is withdrawn, not removed.
* The comments' own times decide, never the order they are processed in. Deliveries come late,
  twice and out of order (retries, rate-limit reschedules, several workers, redelivery after an
  outage, newest first). Each vote and score keeps when it was written, the comment's time or
  its edit's (Judgment.voted_at, Rating.created_at), and a rater's current vote in a round, like
  each of their current scores, is the one written last: a version that arrives after a newer
  one is recorded already superseded by it. A comment acts in the round that was current when it
  was written, and an /undo or a review acts on the vote as it stood when it was written.
* Every write is idempotent per comment version: processing the same comment (or delivery) twice
  records it once, and replaying an old comment never undoes what later comments did.
* Writes on one task are serialized by locking the task's row (PostgreSQL; SQLite serializes
  every write anyway), and everything a write depends on, its round included, is read after the
  lock, so concurrent workers cannot leave a rater with two current votes.

What the records cannot tell: a retraction (an /undo, an edit that removes the /prefer or a
score, a deletion) keeps no time of its own, and an edit that leaves a vote as it was writes
nothing. So the order still matters when a retraction is processed before the vote it ends (or
before a vote written between the two), and when an unchanged version of a comment is processed
before an older version of it that differed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
    """What a command acts on: the pair and the comment it came from.

    The round is not part of the context: each write chooses it after locking the task, from
    the comment's time (a follow-up can start a round between building a context and writing).
    """

    session: Session
    pair: Pair
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
        """A context on the pair, with the sides' recorded head SHAs.

        ``rubric``: the repository's RepoConfig, its rubric, or a Rubric (see ``Rubric.of``); the
        task's own axes, if it has some, take precedence.
        """
        heads = {side.letter: side.head_sha for side in pair.sides}
        return cls(
            session=session,
            pair=pair,
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


def record_followup(ctx: CommandContext, text: str) -> tuple[Round, bool]:
    """Start the next round with a follow-up prompt for both models; return (round, created).

    The round starts when the comment was written (Round.created_at): commands written before
    it act in the round before, however late they are processed. What was recorded stays in its
    round: a vote written after the follow-up but processed before it stays in the round before.
    Idempotent per comment.
    """
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
        created_at=comment.written_at,
    )
    session.add(new)
    session.flush()
    return new, True


def _round_at(session: Session, task: Task, when: datetime) -> Round:
    """The round that was current at ``when``: the latest follow-up round started by then and not
    withdrawn, else round 1."""
    first = ensure_first_round(session, task)
    later = session.scalars(
        select(Round)
        .where(
            Round.task_id == task.id, Round.number > 1, Round.withdrawn_at.is_(None), Round.created_at <= when
        )
        .order_by(Round.number.desc())
        .limit(1)
    ).first()
    return later or first


def _round_of_comment(ctx: CommandContext) -> Round:
    """The round ctx.comment acts in: the one it already recorded in, else the one that was
    current when it was written. Call with the task locked."""
    session, comment = ctx.session, ctx.comment
    for model in (Judgment, Rating):
        round_id = session.scalar(
            select(model.round_id).where(model.task_id == ctx.task_id, model.comment_id == comment.comment_id).limit(1)
        )
        if round_id is not None:
            return session.get(Round, round_id)
    return _round_at(session, ctx.pair.task, comment.created_at)


# Versions ---------------------------------------------------------------------------------
#
# A rater's vote in a round, and each of their scores, is a sequence of versions in the order
# they were written: one per comment, and one per edit of it that changed it. The current
# version is the last one, unless it was retracted.


def _written(row: Judgment | Rating) -> datetime:
    return row.voted_at if isinstance(row, Judgment) else row.created_at


def _versions(session: Session, model: type, **where: Any) -> list:
    """The rows of ``model`` matching ``where``, in the order they were written (at the same
    moment: by comment id, then as recorded), as the database has them now."""
    written = model.voted_at if model is Judgment else model.created_at
    return list(
        session.scalars(
            select(model)
            .filter_by(**where)
            .order_by(written, model.comment_id, model.id)
            .execution_options(populate_existing=True)
        )
    )


def _write_version(
    rows: list,
    comment: CommentRef,
    value: Any,
    *,
    same: Callable[[Any, Any], bool],
    add: Callable[[Any], Any],
    supersede: Callable[[Any, str, Any], None],
    deleted: bool,
) -> tuple[Any, bool]:
    """Place one version of ``comment`` (written at comment.written_at) among ``rows``, the
    rater's versions of one vote or score, oldest first; return (row, changed).

    ``value`` is what this version of the comment holds, or None if it holds nothing (an edit
    that removed it). ``same(row, value)``: the row holds value; ``add(value)``: a new row;
    ``supersede(old, reason, by)``: end a row, ``by`` the row replacing it or None; ``deleted``:
    the comment was deleted. The result is the same whatever order the versions come in (see the
    module docstring for what the records cannot tell).
    """
    at, comment_id = comment.written_at, comment.comment_id
    mine = [row for row in rows if row.comment_id == comment_id]
    if value is not None:
        for row in reversed(mine):
            if _written(row) == at and same(row, value):
                return row, False  # this version, again
    previous = next((row for row in reversed(mine) if _written(row) <= at), None)
    later = [row for row in rows if (_written(row), row.comment_id) > (at, comment_id)]
    edited_later = any(row.comment_id == comment_id for row in later)
    current = next((row for row in reversed(rows) if row.superseded_at is None), None)
    if value is None:
        # The comment no longer holds it: retract its version, unless that no longer stands or
        # a later version of the comment was processed first.
        if previous is None or previous is not current or edited_later:
            return None, False
        supersede(previous, "edited", None)
        return None, True
    removed = previous is not None and previous.superseded_reason == "edited" and not edited_later
    if previous is not None and same(previous, value) and not removed:
        return previous, False  # an edit that left it as it was
    row = add(value)
    if later:  # a version written after this one was processed first
        supersede(row, "edited" if later[0].comment_id == comment_id else "revote", later[0])
    elif deleted:  # a version of a deleted comment, processed after the deletion
        supersede(row, "deleted", None)
    elif current is not None:
        # "edited" when this is an edit of the current version's comment (GitHub's times are whole
        # seconds, so an edit can have its comment's time); a second /prefer in a comment revotes.
        edit = current.comment_id == comment_id and comment.edited_at is not None
        supersede(current, "edited" if edit else "revote", row)
    return row, True


def _deleted(session: Session, task_id: int, comment_id: int) -> bool:
    """Whether the comment was deleted (what it recorded was retracted as "deleted")."""
    return any(
        session.scalar(
            select(model.id)
            .where(model.task_id == task_id, model.comment_id == comment_id, model.superseded_reason == "deleted")
            .limit(1)
        )
        is not None
        for model in (Judgment, Rating)
    )


# Judgments --------------------------------------------------------------------------------


def record_judgment(ctx: CommandContext, vote: Vote | None) -> tuple[Judgment | None, bool]:
    """Record the comment author's vote as ctx.comment holds it; return (judgment, changed).

    ``vote`` is the comment's /prefer as written at ctx.comment.written_at, the comment's time or
    its edit's; for an edit, its last /prefer, or None if it has none. The vote goes into the
    round the comment acts in, and becomes the rater's current vote there unless one was written
    later: a newer vote supersedes (reason "revote", or "edited" for a version of the same
    comment), an older one is recorded already superseded. An edit without /prefer retracts the
    comment's vote if it is still current (reason "edited"); an edit that leaves the vote as it
    was writes nothing, and neither does a version processed again. Returns the judgment of this
    version (None when it holds no vote).
    """
    session, comment = ctx.session, ctx.comment
    _lock(session, ctx.task_id)
    round_ = _round_of_comment(ctx)
    rows = _versions(session, Judgment, round_id=round_.id, rater_id=comment.author_id)

    def add(new: Vote) -> Judgment:
        # A version in a round that is over judges what the comment's earlier one judged.
        earlier = [row for row in rows if row.comment_id == comment.comment_id]
        if earlier and round_.id != current_round(session, ctx.pair.task).id:
            return _add_judgment(ctx, round_.id, new, earlier[-1].head_sha_a, earlier[-1].head_sha_b)
        return _add_judgment(ctx, round_.id, new, ctx.head_sha_a, ctx.head_sha_b)

    def supersede(old: Judgment, reason: str, by: Judgment | None) -> None:
        _supersede(old, reason, by.comment_id if by is not None else comment.comment_id, by=by)

    return _write_version(
        rows,
        comment,
        vote,
        same=_same_vote,
        add=add,
        supersede=supersede,
        deleted=_deleted(session, ctx.task_id, comment.comment_id),
    )


def undo(ctx: CommandContext) -> tuple[Judgment, bool]:
    """Retract the comment author's vote as it stood when the /undo was written; return
    (judgment, changed).

    The round is the one current when the /undo was written, and the vote the latest one the
    rater wrote before it (reason "undo"). A vote written after the /undo stays current even if
    it was processed first; the vote before it is then marked undone, as if processed in order.
    Idempotent per comment.
    """
    session, comment = ctx.session, ctx.comment
    _lock(session, ctx.task_id)
    done = session.scalars(
        select(Judgment).where(
            Judgment.task_id == ctx.task_id,
            Judgment.superseded_by_comment_id == comment.comment_id,
            Judgment.superseded_reason == "undo",
        )
    ).first()
    if done is not None:
        return done, False
    round_ = _round_at(session, ctx.pair.task, comment.created_at)
    rows = _versions(session, Judgment, round_id=round_.id, rater_id=comment.author_id)
    before = [row for row in rows if row.voted_at <= comment.written_at]
    # It stood if it is current, or was replaced by a vote written after the /undo; a vote
    # retracted otherwise (undone, deleted, removed by an edit) did not.
    if not before or (before[-1].superseded_at is not None and before[-1].superseded_by_id is None):
        raise CommandError(f"you have no vote to undo in round {round_.number}")
    _supersede(before[-1], "undo", comment.comment_id)
    return before[-1], True


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


def record_ratings(ctx: CommandContext, side: str, scores: dict[str, int]) -> tuple[list[Rating], bool]:
    """Record the comment author's scores of one side, one row per axis; return (rows, changed).

    Each score is placed by when it was written, as a vote is (see ``record_judgment``): it
    supersedes the rater's older score of the same side and axis in the round (reason
    "revote"), or is recorded already superseded by a newer one. Scores this version of the
    comment already recorded are not recorded again.
    """
    side = _checked_side(side)
    checked = dict(ctx.rubric.score(axis, score) for axis, score in scores.items())
    if not checked:
        raise CommandError("give at least one score")
    return _write_scores(ctx, {(side, axis): score for axis, score in checked.items()})


def ratings_edited(ctx: CommandContext, scores: dict[str, dict[str, int]]) -> tuple[list[Rating], bool]:
    """Apply an edit of ctx.comment whose /rate commands now give ``scores`` ({side: {axis:
    score}}); return (the rows of the scores it gives, changed).

    A score the edit changed is a new version (reason "edited"), placed by the edit's time; one
    it dropped is retracted if still current; one it left as it was writes nothing.
    """
    wanted: dict[tuple[str, str], int | None] = {}
    for side, axes in scores.items():
        side = _checked_side(side)
        for axis, score in axes.items():
            axis, score = ctx.rubric.score(axis, score)
            wanted[(side, axis)] = score
    return _write_scores(ctx, wanted, whole_comment=True)


def _write_scores(
    ctx: CommandContext, wanted: dict[tuple[str, str], int | None], *, whole_comment: bool = False
) -> tuple[list[Rating], bool]:
    """Write one version of each (side, axis) score of ctx.comment. ``whole_comment``: ``wanted``
    is everything this version gives, so the comment's other scores are no longer given."""
    session, comment = ctx.session, ctx.comment
    _lock(session, ctx.task_id)
    if whole_comment:
        given = select(Rating.side, Rating.axis).where(
            Rating.task_id == ctx.task_id, Rating.comment_id == comment.comment_id
        )
        for side, axis in session.execute(given):
            wanted.setdefault((side, axis), None)
    round_ = _round_of_comment(ctx)
    deleted = _deleted(session, ctx.task_id, comment.comment_id)
    rows, changed = [], False
    for (side, axis), score in wanted.items():
        versions = _versions(session, Rating, round_id=round_.id, rater_id=comment.author_id, side=side, axis=axis)
        row, wrote = _write_version(
            versions,
            comment,
            score,
            same=lambda rating, value: rating.score == value,
            add=lambda value, side=side, axis=axis: _add_rating(ctx, round_.id, side, axis, value),
            supersede=_supersede_rating,
            deleted=deleted,
        )
        changed |= wrote
        if row is not None:
            rows.append(row)
    return rows, changed


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
    """A new score, written at ctx.comment.written_at (Rating.created_at), linked to the latest
    vote the rater had written by then in the round."""
    session, comment = ctx.session, ctx.comment
    judgment_id = session.scalar(
        select(Judgment.id)
        .where(
            Judgment.round_id == round_id,
            Judgment.rater_id == comment.author_id,
            Judgment.voted_at <= comment.written_at,
        )
        .order_by(Judgment.voted_at.desc(), Judgment.comment_id.desc(), Judgment.id.desc())
        .limit(1)
    )
    rating = Rating(
        task_id=ctx.task_id,
        round_id=round_id,
        judgment_id=judgment_id,
        rater_id=comment.author_id,
        rater_login=comment.author_login,
        side=side,
        axis=axis,
        score=score,
        comment_id=comment.comment_id,
        delivery_id=comment.delivery_id,
        created_at=comment.written_at,
    )
    session.add(rating)
    session.flush()
    return rating


def _supersede_rating(old: Rating, reason: str, by: Rating | None = None) -> None:
    old.superseded_at, old.superseded_reason = utcnow(), reason


def _checked_side(side: str) -> str:
    letter = str(side).upper()
    if letter not in SIDES:
        raise CommandError("the side must be A or B")
    return letter


# Reviews ----------------------------------------------------------------------------------


def review(
    ctx: CommandContext, decision: str, target_login: str | None = None, reason: str = ""
) -> tuple[JudgmentReview, bool]:
    """A reviewer's decision on a rater's vote as it stood when the review was written; return
    (review, created).

    The vote is ``target_login``'s, or, without a login, the only one in the round still waiting
    for review, in the round current when the review was written. A vote written after the
    review is not the one reviewed, even if it was processed first. Reviewing one's own vote is
    refused. Idempotent per comment.
    """
    if decision not in REVIEW_DECISIONS:
        raise ValueError(f"decision must be one of {REVIEW_DECISIONS}, not {decision!r}")
    reason = (reason or "").strip()
    verb = "approve" if decision == "approved" else "reject"
    if decision == "rejected" and not reason:
        raise CommandError("say why, e.g. `/reject @rater <reason>`; the reason is shown to the rater")
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
            raise CommandError(f"@{login} has no vote in round {number}")
        target = theirs[-1]
    else:
        waiting = [judgment for judgment in standing if judgment.review_state == "pending"]
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


def _votes_standing_at(session: Session, round_id: int, when: datetime) -> list[Judgment]:
    """Each rater's vote in the round as it stood at ``when``, oldest first: the latest one they
    wrote by then, if it is current or was replaced by one written later (not retracted)."""
    latest: dict[int, Judgment] = {}
    for judgment in _versions(session, Judgment, round_id=round_id):
        if judgment.voted_at <= when:
            latest[judgment.rater_id] = judgment
    standing = (j for j in latest.values() if j.superseded_at is None or j.superseded_by_id is not None)
    return sorted(standing, key=lambda judgment: judgment.id)


# Deleted comments -------------------------------------------------------------------------


def comment_deleted(session: Session, comment_id: int) -> int:
    """Retract everything a deleted comment did that is still in force; return how many records.

    Its current judgments and ratings are superseded (reason "deleted"), its follow-up round is
    withdrawn, and its reviews are withdrawn (the judgment's review state falls back to the
    latest remaining review, or pending). Versions of the comment processed after its deletion
    are recorded already deleted. An /undo is not reversed by deleting its comment, and nothing
    of a closed pair's task changes: its record is final.
    """
    task_ids = set(session.scalars(select(Judgment.task_id).where(Judgment.comment_id == comment_id)))
    task_ids |= set(session.scalars(select(Rating.task_id).where(Rating.comment_id == comment_id)))
    task_ids |= set(session.scalars(select(Round.task_id).where(Round.comment_id == comment_id)))
    task_ids |= set(
        session.scalars(select(Judgment.task_id).join(JudgmentReview).where(JudgmentReview.comment_id == comment_id))
    )
    for task_id in sorted(task_ids):
        _lock(session, task_id)
    open_tasks = set(
        session.scalars(
            select(Pair.task_id)
            .where(Pair.task_id.in_(task_ids), Pair.closed_at.is_(None))
            .execution_options(populate_existing=True)
        )
    )
    fresh = {"populate_existing": True}
    count = 0
    for judgment in session.scalars(
        select(Judgment)
        .where(Judgment.comment_id == comment_id, Judgment.task_id.in_(open_tasks), Judgment.superseded_at.is_(None))
        .execution_options(**fresh)
    ):
        _supersede(judgment, "deleted", comment_id)
        count += 1
    for rating in session.scalars(
        select(Rating)
        .where(Rating.comment_id == comment_id, Rating.task_id.in_(open_tasks), Rating.superseded_at.is_(None))
        .execution_options(**fresh)
    ):
        _supersede_rating(rating, "deleted")
        count += 1
    for round_ in session.scalars(
        select(Round)
        .where(Round.comment_id == comment_id, Round.task_id.in_(open_tasks), Round.withdrawn_at.is_(None))
        .execution_options(**fresh)
    ):
        round_.withdrawn_at, round_.withdrawn_reason = utcnow(), "deleted"
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


__all__ = [
    "CommandContext",
    "CommandError",
    "CommentRef",
    "Progress",
    "Rubric",
    "Vote",
    "comment_deleted",
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
    "round_number",
    "undo",
]
