"""What Tandem records. Judgments and ratings are never erased: a newer one supersedes an older one.

One module per part: tasks (and their pairs, sides and rounds), judgments (and everything raters and
reviewers write), operations (deliveries, the outbox, tokens, the change feed)."""

from tandem.infra.models.judgments import (
    CiCheck,
    CommandVersion,
    DeletedComment,
    Judgment,
    JudgmentReview,
    LineComment,
    Rating,
)
from tandem.infra.models.operations import (
    ApiToken,
    DeadLetter,
    DeadLetterKind,
    ExportChange,
    OutboxEntry,
    ProcessedDelivery,
)
from tandem.infra.models.tasks import DEFAULT_TEAM, Installation, Output, Pair, Repository, Round, RoundSide, Side, Task

__all__ = [
    "DEFAULT_TEAM",
    "ApiToken",
    "CiCheck",
    "CommandVersion",
    "DeadLetter",
    "DeadLetterKind",
    "DeletedComment",
    "ExportChange",
    "Installation",
    "Judgment",
    "JudgmentReview",
    "LineComment",
    "OutboxEntry",
    "Output",
    "Pair",
    "ProcessedDelivery",
    "Rating",
    "Repository",
    "Round",
    "RoundSide",
    "Side",
    "Task",
]

from tandem.domain import changes  # noqa: F401  (the listener that writes ExportChange rows)
