"""The values Tandem's records and commands take, and the rules for the names people write,
each defined once: the models (whose columns CHECK these values), the domain and the exports
use them. A StrEnum member equals its string, so stored rows and JSON output are plain strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum


class TaskStatus(StrEnum):
    """queued -> opening -> open -> closed, or failed; awaiting_outputs and applying while the
    task's current round is (tandem.domain.rounds)."""

    QUEUED = "queued"
    OPENING = "opening"
    AWAITING_OUTPUTS = "awaiting_outputs"
    APPLYING = "applying"
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"


class RoundStatus(StrEnum):
    AWAITING_OUTPUTS = "awaiting_outputs"  # asked of the runner; PRs unchanged
    APPLYING = "applying"  # outputs accepted; the apply job is putting them on GitHub
    OPEN = "open"  # both outputs are on the PRs; votes count here
    CLOSED = "closed"  # see Round.closed_reason


class ClosedReason(StrEnum):
    JUDGED = "judged"  # its required approved judgments are in
    SUPERSEDED = "superseded"  # the next round opened
    EXPIRED = "expired"  # the runner did not answer within the round timeout
    FAILED = "failed"  # its outputs could not be put on the PRs (Round.failure_reason)
    WITHDRAWN = "withdrawn"  # its /followup was deleted while it awaited outputs


# Rounds that never reached the PRs: no comment acts in them, and they are no task's current round.
NEVER_OPENED = (ClosedReason.EXPIRED, ClosedReason.FAILED, ClosedReason.WITHDRAWN)


class Verdict(StrEnum):
    """What a /prefer says (in this order: the statistics number them so)."""

    A = "A"
    B = "B"
    TIE = "tie"
    NEITHER = "neither"

    @classmethod
    def parse(cls, text: str) -> Verdict | None:
        """The verdict a rater wrote, in any case ("a", "Tie"), or None."""
        return {verdict.lower(): verdict for verdict in cls}.get(str(text).lower())


class Strength(StrEnum):
    """How strongly a vote for A or B prefers it (a margin of 1, 2 or 3, in this order)."""

    SLIGHTLY = "slightly"
    CLEARLY = "clearly"
    MUCH = "much"


DEFAULT_STRENGTH = Strength.CLEARLY  # a bare `/prefer A`


class ReviewState(StrEnum):
    """Where a vote stands in review (Judgment.review_state): waiting for reviewers, approved by
    as many as the repository asks for, or returned to its rater until they vote again."""

    PENDING = "pending"
    APPROVED = "approved"
    RETURNED = "returned"


class ReviewDecision(StrEnum):
    """What a reviewer's /approve or /reject records (JudgmentReview.decision)."""

    APPROVED = "approved"
    REJECTED = "rejected"


class SupersededReason(StrEnum):
    """Why a judgment or rating is no longer current (tandem.domain.history)."""

    REVOTE = "revote"  # a newer vote or score of another comment
    EDITED = "edited"  # its comment was edited
    UNDO = "undo"  # an /undo
    DELETED = "deleted"  # its comment was deleted


class Role(StrEnum):
    """Who may run a command (tandem.domain.roles): nobody is a repository's setting for /followup."""

    RATER = "rater"
    REVIEWER = "reviewer"
    ANYONE = "anyone"
    NOBODY = "nobody"


SIDES = ("A", "B")
DEFAULT_AXES = ("correctness", "security", "reliability", "maintainability")
DEFAULT_SCALE = (1, 5)

# A GitHub login: letters, digits and single hyphens; apps end in "[bot]".
LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?")
# A rubric axis is one word, so `/rate A code-quality=4` reads; Rating.axis holds 64 characters.
_AXIS = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def checked_axes(axes: Iterable[str]) -> tuple[str, ...]:
    """The axes of a rubric (a task's or a repository's), or a ValueError saying what is wrong."""
    axes = tuple(axes)
    for axis in axes:
        if not _AXIS.fullmatch(axis):
            raise ValueError(f"axis {axis!r} must be one lower-case word (letters, digits, _ or -)")
    if len(set(axes)) != len(axes):
        raise ValueError("axes repeat")
    return axes
