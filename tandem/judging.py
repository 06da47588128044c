"""The judging domain: votes, ratings, follow-up rounds, reviews and line comments.

Pure domain on a SQLAlchemy Session: no GitHub, no HTTP, no queue. The worker parses a comment
(tandem.commands), builds a CommandContext and calls in, inside its delivery's transaction.

Four rules hold everywhere:

* Nothing is deleted. A newer version of a judgment or rating supersedes the older one
  (superseded_at, superseded_reason: revote, edited, undo, deleted); a retraction is a
  supersession by nothing. A follow-up round whose comment is deleted is withdrawn, not removed.
* The comments' own times decide, never the order they are processed in. Deliveries come late,
  twice and out of order (retries, rate-limit reschedules, several workers, redelivery after an
  outage, newest first). Every version of a comment is logged with its time, retractions
  included (an edit that removes the /prefer or a score, an /undo, a deletion), and so are
  versions that leave a vote as it was; a rater's judgments and ratings in a round are derived
  from that whole log in the order it was written (tandem.history), so processing the same
  comments, edits, deletions and /undos in any order ends in the same records. A comment acts in
  the round that was current when it was written, and an /undo or a review acts on the vote as
  it stood when it was written.
* Every write is idempotent per comment version: processing the same comment (or delivery) twice
  records it once, and replaying an old comment never undoes what later comments did.
* Writes on one task are serialized by locking the task's row (PostgreSQL; SQLite serializes
  every write anyway), and everything a write depends on, its round included, is read after the
  lock, so concurrent workers cannot leave a rater with two current votes.

What the records still cannot tell: when a comment was deleted (GitHub does not say), so a
deletion counts from the comment's last version (see tandem.history: the outcome is the same);
and which of two versions of one comment written in the same second is the later one (GitHub's
times are whole seconds): the one processed last is kept. A follow-up whose comment is deleted
after a vote was placed in its round leaves that vote in the withdrawn round.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tandem import history
from tandem.db import utcnow
from tandem.errors import TandemError
from tandem.models import (
    SIDES,
    CommandVersion,
    DeletedComment,
    Judgment,
    JudgmentReview,
    LineComment,
    Pair,
    Rating,
    Round,
    Task,
)
from tandem.quoting import code_span

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
    ``str()`` then reads "`/prefer C`: the side must be A, B, tie or neither", the command quoted
    by tandem.quoting.
    """

    def __init__(self, message: str, command: str | None = None):
        super().__init__(message)
        self.message = message
        self.command = command

    def __str__(self) -> str:
        return f"{code_span(self.command)}: {self.message}" if self.command else self.message


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
            raise CommandError(f"unknown axis {code_span(axis)}; this repository's axes are {', '.join(self.axes)}")
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
    if history.is_deleted(session, comment.comment_id):  # processed after its deletion
        new.withdrawn_at, new.withdrawn_reason = utcnow(), "deleted"
    session.add(new)
    session.flush()
    return new, new.withdrawn_at is None


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


def round_of_comment(ctx: CommandContext) -> Round:
    """The round ctx.comment acts in: the one it already wrote versions in, else the one that
    was current when it was written. Call with the task locked."""
    session, comment = ctx.session, ctx.comment
    round_id = session.scalar(
        select(CommandVersion.round_id).where(CommandVersion.comment_id == comment.comment_id).limit(1)
    )
    if round_id is not None:
        return session.get(Round, round_id)
    return _round_at(session, ctx.pair.task, comment.created_at)


# Versions ---------------------------------------------------------------------------------
#
# Each version of a comment is logged with its time, and the rater's vote and scores in the
# round are derived from the whole log (tandem.history), so the order of processing never counts.


def _log(ctx: CommandContext, round_id: int, target: str, value: Any) -> None:
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


def _settle_votes(ctx: CommandContext, round_: Round, rater_id: int) -> tuple[list[history.Slot], dict, list]:
    """Derive the rater's judgments in the round from the log; return (slots, rows, changed)."""
    session = ctx.session
    slots = history.replay(session, round_.id, rater_id, history.VOTE)
    rows = _rows(session, Judgment, round_id=round_.id, rater_id=rater_id)

    def add(slot: history.Slot) -> Judgment:
        # A version in a round that is over judges what the comment's earlier one judged.
        earlier = [row for row in rows if row.comment_id == slot.comment_id]
        heads = (ctx.head_sha_a, ctx.head_sha_b)
        if earlier and round_.id != current_round(session, ctx.pair.task).id:
            heads = (earlier[-1].head_sha_a, earlier[-1].head_sha_b)
        return _add_judgment(ctx, round_.id, Vote(**slot.value), *heads, at=slot.at, delivery_id=slot.delivery_id)

    found, changed = history.settle(session, Judgment, rows, slots, same=_same_vote, add=add)
    if changed:
        _link_ratings(session, round_.id, rater_id)
    return slots, found, changed


def _rows(session: Session, model: type, **where: Any) -> list:
    return list(
        session.scalars(select(model).filter_by(**where).order_by(model.id).execution_options(populate_existing=True))
    )


def _of_this_version(ctx: CommandContext, slots: list[history.Slot], found: dict) -> Any:
    """The row of the run that ctx.comment's version belongs to, or None if it holds nothing."""
    comment = ctx.comment
    mine = [slot for slot in slots if slot.comment_id == comment.comment_id and slot.holds(comment.written_at)]
    return found[id(mine[-1])] if mine else None


# Judgments --------------------------------------------------------------------------------


def record_judgment(ctx: CommandContext, vote: Vote | None) -> tuple[Judgment | None, bool]:
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
    value = {"verdict": vote.verdict, "strength": vote.strength, "rationale": vote.rationale} if vote else None
    _log(ctx, round_.id, history.VOTE, value)
    slots, found, changed = _settle_votes(ctx, round_, comment.author_id)
    return _of_this_version(ctx, slots, found), bool(changed)


def undo(ctx: CommandContext) -> tuple[Judgment, bool]:
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
    undone = [found[id(slot)] for slot in slots if slot.fate and slot.fate[0] == "undo" and slot.fate[2] == comment.comment_id]
    if not undone:
        # Kept in the log: a vote written before it that arrives later is undone then.
        raise CommandError(f"you have no vote to undo in round {round_.number}")
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
    ctx: CommandContext,
    round_id: int,
    vote: Vote,
    head_sha_a: str | None,
    head_sha_b: str | None,
    *,
    at: datetime,
    delivery_id: str,
) -> Judgment:
    comment = ctx.comment
    on_task = (at - ctx.started_at).total_seconds() if ctx.started_at is not None else None
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
        time_on_task_seconds=on_task if on_task is None or on_task >= 0 else None,
        review_state="pending",
    )
    ctx.session.add(judgment)
    ctx.session.flush()
    return judgment


def _same_vote(judgment: Judgment, value: dict) -> bool:
    return (judgment.verdict, judgment.strength, judgment.rationale) == (
        value["verdict"], value["strength"], value["rationale"]
    )


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
    return _write_scores(ctx, {history.score_target(side, axis): score for axis, score in checked.items()})


def ratings_edited(ctx: CommandContext, scores: dict[str, dict[str, int]]) -> tuple[list[Rating], bool]:
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
    ctx: CommandContext, wanted: dict[str, int], *, whole_comment: bool = False
) -> tuple[list[Rating], bool]:
    """Write one version of each score (by target, "side:axis") of ctx.comment. ``whole_comment``:
    ``wanted`` is everything this version gives, so the comment's other scores are no longer given."""
    session, comment = ctx.session, ctx.comment
    _lock(session, ctx.task_id)
    round_ = round_of_comment(ctx)
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


def _settle_scores(ctx: CommandContext, round_id: int, rater_id: int, target: str) -> tuple[list, dict, list]:
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


def _add_rating(ctx: CommandContext, round_id: int, side: str, axis: str, slot: history.Slot) -> Rating:
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
    votes = _rows(session, Judgment, round_id=round_id, rater_id=rater_id)
    votes.sort(key=lambda judgment: (judgment.voted_at, judgment.comment_id, judgment.id))
    for rating in _rows(session, Rating, round_id=round_id, rater_id=rater_id):
        written = (rating.created_at, rating.comment_id)
        before = [judgment for judgment in votes if (judgment.voted_at, judgment.comment_id) <= written]
        wanted = before[-1].id if before else None
        if rating.judgment_id != wanted:
            rating.judgment_id = wanted
    session.flush()


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
    if history.is_deleted(session, comment.comment_id):  # processed after its deletion
        row.withdrawn_at = utcnow()
        session.flush()
        return row, False
    target.review_state = decision
    session.flush()
    return row, True


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


# Deleted comments -------------------------------------------------------------------------


def comment_deleted(
    session: Session, comment_id: int, *, task_id: int | None = None, delivery_id: str | None = None
) -> int:
    """Retract everything a deleted comment did that is still in force; return how many records.

    The deletion is logged (``task_id``: the task of the PR it was on, so that versions of it
    processed later are retracted too), its judgments and ratings end as tandem.history says
    (reason "deleted"), its follow-up round is withdrawn, and its reviews are withdrawn (the
    judgment's review state falls back to the latest remaining review, or pending). An /undo is
    not reversed by deleting its comment, and nothing of a closed pair's task changes: its
    record is final.
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
        round_ = session.get(Round, round_id)
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


def _deletion_context(session: Session, round_: Round, rater_id: int, comment_id: int) -> CommandContext:
    """A context for deriving the rater's rows again after a deletion. A deletion only ends rows,
    so the comment details it carries (for new rows) are never used."""
    pair = session.scalars(select(Pair).where(Pair.task_id == round_.task_id)).one()
    login = session.scalar(select(Judgment.rater_login).where(Judgment.rater_id == rater_id).limit(1)) or session.scalar(
        select(Rating.rater_login).where(Rating.rater_id == rater_id).limit(1)
    )
    ref = CommentRef(comment_id, None, "", "comment", rater_id, login or "", round_.created_at, "A")
    return CommandContext(session=session, pair=pair, comment=ref)



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
    "round_of_comment",
    "undo",
]
