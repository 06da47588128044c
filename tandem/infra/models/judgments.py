"""What raters and reviewers said: judgments, ratings, the command versions they derive from, reviews,
line comments, and the CI beside them. Never erased: a newer row supersedes an older one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tandem.domain.vocabulary import (
    ReviewDecision,
    ReviewState,
    Strength,
    SupersededReason,
    Verdict,
)
from tandem.infra.db import Base, UTCDateTime, one_of, utcnow


class Judgment(Base):
    """One version of a rater's verdict in a round. Edits and new votes supersede; nothing is deleted."""

    __tablename__ = "judgments"
    __table_args__ = (Index("ix_judgments_current", "round_id", "rater_id", "superseded_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"))
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    rater_id: Mapped[int] = mapped_column(BigInteger)
    rater_login: Mapped[str] = mapped_column(String(255))
    verdict: Mapped[Verdict] = mapped_column(one_of(Verdict, "ck_judgments_verdict"))
    strength: Mapped[Strength | None] = mapped_column(one_of(Strength, "ck_judgments_strength"))  # A and B only
    rationale: Mapped[str] = mapped_column(Text, default="")
    head_sha_a: Mapped[str | None] = mapped_column(String(64))
    head_sha_b: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # comment or review
    comment_id: Mapped[int] = mapped_column(BigInteger, index=True)
    comment_url: Mapped[str | None] = mapped_column(String(512))
    on_side: Mapped[str] = mapped_column(String(1))  # the PR the vote was cast on
    delivery_id: Mapped[str] = mapped_column(String(64))
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    time_on_task_seconds: Mapped[float | None] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("judgments.id"))
    superseded_reason: Mapped[SupersededReason | None] = mapped_column(
        one_of(SupersededReason, "ck_judgments_superseded_reason")
    )
    # The comment that ended this version (the new vote, the /undo, or the edited or deleted
    # comment itself): replaying that comment finds it here and changes nothing.
    superseded_by_comment_id: Mapped[int | None] = mapped_column(BigInteger)
    review_state: Mapped[ReviewState] = mapped_column(
        one_of(ReviewState, "ck_judgments_review_state"), default=ReviewState.PENDING
    )
    # Each side's CI state on the heads the vote was cast on, when it was cast (tandem.domain.ci.CiState).
    ci_state_a: Mapped[str | None] = mapped_column(String(16))
    ci_state_b: Mapped[str | None] = mapped_column(String(16))

    ratings: Mapped[list[Rating]] = relationship(back_populates="judgment")
    reviews: Mapped[list[JudgmentReview]] = relationship(back_populates="judgment", order_by="JudgmentReview.id")


class Rating(Base):
    """A per-axis score for one side, from a /rate command."""

    __tablename__ = "ratings"
    # The export reads one rater's scores in a round (tandem.domain.export).
    __table_args__ = (Index("ix_ratings_round_rater", "round_id", "rater_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    judgment_id: Mapped[int | None] = mapped_column(ForeignKey("judgments.id"))
    rater_id: Mapped[int] = mapped_column(BigInteger)
    rater_login: Mapped[str] = mapped_column(String(255))
    side: Mapped[str] = mapped_column(String(1))
    axis: Mapped[str] = mapped_column(String(64))
    score: Mapped[int] = mapped_column(Integer)
    comment_id: Mapped[int] = mapped_column(BigInteger, index=True)
    delivery_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    superseded_reason: Mapped[SupersededReason | None] = mapped_column(
        one_of(SupersededReason, "ck_ratings_superseded_reason")
    )

    judgment: Mapped[Judgment | None] = relationship(back_populates="ratings")


class CommandVersion(Base):
    """One version of what a comment holds of one of a rater's votes or scores, or of its /undo.

    Judgments and ratings are derived from these (tandem.domain.history): every version is kept, those
    that remove a vote or leave it as it was included, so that the comments' own times decide and
    no processing order can bring back a retracted vote.
    """

    __tablename__ = "command_versions"
    __table_args__ = (
        UniqueConstraint("comment_id", "target", "written_at", "edited"),
        Index("ix_command_versions_rater", "round_id", "rater_id", "target"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    rater_id: Mapped[int] = mapped_column(BigInteger)
    comment_id: Mapped[int] = mapped_column(BigInteger, index=True)
    # "vote", "undo", or a score's "side:axis" ("A:correctness")
    target: Mapped[str] = mapped_column(String(80))
    written_at: Mapped[datetime] = mapped_column(UTCDateTime)
    edited: Mapped[bool] = mapped_column(default=False)  # False: the comment as created
    # What the version holds: the vote ({verdict, strength, rationale}) or the score; null: nothing.
    value: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    delivery_id: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeletedComment(Base):
    """A comment (or review) deleted on a pair's PR: nothing it held stands, whenever it arrives."""

    __tablename__ = "deleted_comments"

    comment_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    delivery_id: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JudgmentReview(Base):
    """A reviewer's /approve or /reject of a judgment."""

    __tablename__ = "judgment_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    judgment_id: Mapped[int] = mapped_column(ForeignKey("judgments.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(BigInteger)
    reviewer_login: Mapped[str] = mapped_column(String(255))
    decision: Mapped[ReviewDecision] = mapped_column(one_of(ReviewDecision, "ck_judgment_reviews_decision"))
    reason: Mapped[str] = mapped_column(Text, default="")
    comment_id: Mapped[int] = mapped_column(BigInteger)
    delivery_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # its comment was deleted

    judgment: Mapped[Judgment] = relationship(back_populates="reviews")


class CiCheck(Base):
    """The latest report of one CI check on a head of a task's side: another app's check run or
    check suite, or a commit status. Tandem's own check run is never one."""

    __tablename__ = "ci_checks"
    __table_args__ = (UniqueConstraint("task_id", "head_sha", "kind", "source", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    letter: Mapped[str] = mapped_column(String(1))
    head_sha: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # check_run, check_suite or status
    # Who reports it: "app:<id>" for a check run or suite, "user:<id>" for a status's sender. Two
    # apps' (or workflows') checks of one name are two checks; neither can overwrite the other.
    source: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))  # the check run's name, the suite's app, the status's context
    state: Mapped[str] = mapped_column(String(16))  # tandem.domain.ci.CiState
    url: Mapped[str | None] = mapped_column(String(1024))
    # Which report is the latest: GitHub's id of the run, suite or status, then how far it has
    # progressed (tandem.domain.ci.progress); never the times in the payload, which the reporter sets.
    report_id: Mapped[int] = mapped_column(BigInteger)
    progress: Mapped[int] = mapped_column(Integer)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when Tandem recorded this report
    delivery_id: Mapped[str] = mapped_column(String(64))


class LineComment(Base):
    """A rater's review comment on a line of one side's diff: a fine-grained critique."""

    __tablename__ = "line_comments"
    __table_args__ = (Index("ix_line_comments_round_author", "round_id", "author_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"))
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    side: Mapped[str] = mapped_column(String(1))
    author_id: Mapped[int] = mapped_column(BigInteger)
    author_login: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(1024))
    line: Mapped[int | None] = mapped_column(Integer)
    start_line: Mapped[int | None] = mapped_column(Integer)
    diff_side: Mapped[str | None] = mapped_column(String(8))  # LEFT or RIGHT
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    comment_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    comment_url: Mapped[str | None] = mapped_column(String(512))
    delivery_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
