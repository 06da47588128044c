"""The values the judging domain works with: a write's context, its refusals, rubrics, votes, progress."""

from __future__ import annotations

import re
from enum import StrEnum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tandem.errors import TandemError
from tandem.models import Pair, Task
from tandem.quoting import code_span


VERDICTS = ("A", "B", "tie", "neither")
STRENGTHS = ("slightly", "clearly", "much")
DEFAULT_STRENGTH = "clearly"
DEFAULT_AXES = ("correctness", "security", "reliability", "maintainability")  # as tandem.repo_config
DEFAULT_SCALE = (1, 5)


class ReviewDecision(StrEnum):
    """What a reviewer's /approve or /reject records (JudgmentReview.decision)."""

    APPROVED = "approved"
    REJECTED = "rejected"


class ReviewState(StrEnum):
    """Where a vote stands in review (Judgment.review_state): waiting for reviewers, approved by
    as many as the repository asks for, or returned to its rater until they vote again."""

    PENDING = "pending"
    APPROVED = "approved"
    RETURNED = "returned"


REVIEW_DECISIONS = tuple(ReviewDecision)

_AXIS_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_INTEGER = re.compile(r"[+-]?[0-9]+")


class Refused(TandemError):
    """A write the judging rules refuse. The message is written for the person whose comment
    asked for it (tandem.commands.CommandError adds the command as written)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


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
        """Return (axis, score) checked against the rubric, or raise Refused naming it."""
        name = axis.strip().lower()
        if name not in self.axes:
            raise Refused(f"unknown axis {code_span(axis)}; this repository's axes are {', '.join(self.axes)}")
        low, high = self.scale
        text = str(value).strip()
        if not (text.isascii() and _INTEGER.fullmatch(text)) or not low <= int(text) <= high:
            raise Refused(f"{name} must be an integer from {low} to {high}")
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


@dataclass(frozen=True)
class FollowupRules:
    """The repository's `followups` settings (tandem.repo_config.Followups), as commands use them."""

    allowed: str = "raters"  # raters, reviewers or nobody
    max_rounds: int = 5
    round_timeout: timedelta | None = timedelta(hours=24)

    @classmethod
    def of(cls, config: Any = None) -> FollowupRules:
        followups = getattr(config, "followups", None)
        if followups is None:
            return cls()
        return cls(followups.allowed, followups.max_rounds, followups.round_timeout)

    @property
    def role(self) -> str:
        """The role a rater needs to start a round: rater, reviewer or nobody."""
        return self.allowed.removesuffix("s") if self.allowed != "nobody" else "nobody"


@dataclass(frozen=True)
class ReviewRules:
    """The repository's `review` settings (tandem.repo_config.Review) and `require_ci`."""

    approvals: int = 1
    reviewers_may_rate: bool = False
    require_ci: bool = False

    @classmethod
    def of(cls, config: Any = None) -> ReviewRules:
        review = getattr(config, "review", None)
        if review is None:
            return cls()
        return cls(review.approvals, review.reviewers_may_rate, bool(getattr(config, "require_ci", False)))


@dataclass
class CommentContext:
    """What a write acts on: the pair, the comment it came from, and the rules it is held to.

    The round is not part of the context: each write chooses it after locking the task, from
    the comment's time (a follow-up can start a round between building a context and writing).
    tandem.commands.CommandContext builds one from a pair and its repository's config.
    """

    session: Session
    pair: Pair
    comment: CommentRef
    rubric: Rubric = field(default_factory=Rubric)
    head_sha_a: str | None = None
    head_sha_b: str | None = None
    started_at: datetime | None = None  # when the rater started on the task, for time on task
    followups: FollowupRules = field(default_factory=FollowupRules)
    review: ReviewRules = field(default_factory=ReviewRules)

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


def _checked_vote(verdict: str, strength: str | None) -> tuple[str, str | None]:
    verdict = {"a": "A", "b": "B", "tie": "tie", "neither": "neither"}.get(str(verdict).lower(), "")
    if not verdict:
        raise Refused("the side must be A, B, tie or neither")
    if verdict in ("tie", "neither"):
        if strength is not None:
            raise Refused(f"`/prefer {verdict}` takes no strength")
        return verdict, None
    strength = (strength or DEFAULT_STRENGTH).lower()
    if strength not in STRENGTHS:
        raise Refused("the strength must be slightly, clearly or much; put your reasons on the lines below")
    return verdict, strength


@dataclass(frozen=True)
class Progress:
    """The current round's current judgments against the number of raters a task needs."""

    round: int
    required: int
    judgments: int
    approved: int
    returned: int
    pending: int
    raters: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return self.judgments >= self.required and self.approved == self.judgments
