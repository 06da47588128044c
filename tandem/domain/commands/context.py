"""What a command runs in (CommandContext) and how it fails (CommandError)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tandem.domain.judging import CommentContext, CommentRef, FollowupRules, Refused, ReviewRules, Rubric
from tandem.domain.quoting import code_span
from tandem.infra.models import Pair


class CommandError(Refused):
    """A command that cannot be carried out. The message is written for the person who typed it.

    ``command`` is the command as written (``/prefer C``); the command runner fills it in, and
    ``str()`` then reads "`/prefer C`: the side must be A, B, tie or neither", the command quoted
    by tandem.domain.quoting.
    """

    def __init__(self, message: str, command: str | None = None):
        super().__init__(message)
        self.command = command

    @classmethod
    def of(cls, refused: Refused, command: str) -> CommandError:
        """``refused`` (raised by a command or by the judging rules) as the failure of ``command``."""
        if not isinstance(refused, CommandError):
            return cls(refused.message, command)
        refused.command = refused.command or command
        return refused

    def __str__(self) -> str:
        return f"{code_span(self.command)}: {self.message}" if self.command else self.message


@dataclass
class CommandContext(CommentContext):
    """What a command acts on: the pair and the comment it came from, with the repository's
    rules (see ``for_pair``)."""

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
            followups=FollowupRules.of(rubric),
            review=ReviewRules.of(rubric),
        )
