"""The values the judging domain works with: a write's context, votes, progress. (Its refusals are
tandem.infra.errors.Refused, its rubrics tandem.domain.repo_config.Rubric.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tandem.domain.repo_config import Rubric
from tandem.domain.vocabulary import DEFAULT_STRENGTH, Role, Strength, Verdict
from tandem.infra.errors import Refused
from tandem.infra.models import Pair


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
    """The repository's `followups` settings (tandem.domain.repo_config.Followups), as commands use them."""

    allowed: str = "raters"  # raters, reviewers or nobody (the setting's words)
    max_rounds: int = 5
    round_timeout: timedelta | None = timedelta(hours=24)

    @classmethod
    def of(cls, config: Any = None) -> FollowupRules:
        followups = getattr(config, "followups", None)
        if followups is None:
            return cls()
        return cls(followups.allowed, followups.max_rounds, followups.round_timeout)

    @property
    def role(self) -> Role:
        """The role a rater needs to start a round: rater, reviewer or nobody."""
        return Role(self.allowed.removesuffix("s"))


@dataclass(frozen=True)
class ReviewRules:
    """The repository's `review` settings (tandem.domain.repo_config.Review) and `require_ci`."""

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
    tandem.domain.commands.CommandContext builds one from a pair and its repository's config.
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

    verdict: Verdict
    strength: Strength | None = None
    rationale: str = ""

    def __post_init__(self) -> None:
        verdict, strength = _checked_vote(self.verdict, self.strength)
        object.__setattr__(self, "verdict", verdict)
        object.__setattr__(self, "strength", strength)
        object.__setattr__(self, "rationale", (self.rationale or "").strip())

    def describe(self) -> str:
        if self.verdict == Verdict.TIE:
            return "a **tie** (A and B are equally good)"
        if self.verdict == Verdict.NEITHER:
            return "**neither** (both are unacceptable)"
        return f"**{self.verdict}** ({self.strength})"


def _checked_vote(given: str, strength: str | None) -> tuple[Verdict, Strength | None]:
    verdict = Verdict.parse(given)
    if verdict is None:
        raise Refused("the side must be A, B, tie or neither")
    if verdict in (Verdict.TIE, Verdict.NEITHER):
        if strength is not None:
            raise Refused(f"`/prefer {verdict}` takes no strength")
        return verdict, None
    try:
        return verdict, Strength((strength or DEFAULT_STRENGTH).lower())
    except ValueError:
        raise Refused("the strength must be slightly, clearly or much; put your reasons on the lines below") from None


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
