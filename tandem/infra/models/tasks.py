"""Tasks and what they became on GitHub: installations, repositories, tasks, outputs, pairs, sides, rounds."""

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
    ClosedReason,
    RoundStatus,
    TaskStatus,
)
from tandem.infra.db import Base, UTCDateTime, one_of, utcnow

DEFAULT_TEAM = "default"  # the team of tasks submitted without one (the CLI's, and older ones)


class Installation(Base):
    """One installation of the GitHub App on an organization or user account."""

    __tablename__ = "installations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account_login: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int] = mapped_column(BigInteger)
    account_type: Mapped[str] = mapped_column(String(32))
    repository_selection: Mapped[str | None] = mapped_column(String(16))
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    permissions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    repositories: Mapped[list[Repository]] = relationship(back_populates="installation")


class Repository(Base):
    """A repository the app can see through an installation (mirrors among them)."""

    __tablename__ = "repositories"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    installation_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("installations.id"), index=True)
    full_name: Mapped[str] = mapped_column(String(255), index=True)
    private: Mapped[bool] = mapped_column(default=False)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    installation: Mapped[Installation] = relationship(back_populates="repositories")


class Task(Base):
    """A prompt on a mirror repository at a base commit, with two model outputs to compare."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_full_name: Mapped[str] = mapped_column(String(255), index=True)
    base: Mapped[str] = mapped_column(String(255))
    base_sha: Mapped[str | None] = mapped_column(String(64))
    base_branch: Mapped[str | None] = mapped_column(String(255))
    prompt: Mapped[str] = mapped_column(Text)
    rubric: Mapped[list[str] | None] = mapped_column(JSON)
    raters: Mapped[list[str]] = mapped_column(JSON, default=list)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # queued -> opening -> open -> closed, or failed (with failure_reason); awaiting_outputs before
    # a task submitted with models only opens, and while a later round is awaiting_outputs or applying
    # (the status follows the current round: tandem.domain.rounds)
    status: Mapped[TaskStatus] = mapped_column(one_of(TaskStatus, "ck_tasks_status"), default=TaskStatus.QUEUED)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    submitted_by: Mapped[str | None] = mapped_column(String(255))
    # The research team the task belongs to: only its tokens see the task and its judgments.
    team: Mapped[str] = mapped_column(String(255), index=True, default=DEFAULT_TEAM)
    # The answer a gold task expects, {preferred: model | tie | neither, note}: only in the
    # database, the API and exports, never on GitHub (tandem.gold).
    gold: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))  # NULL, not JSON null: filterable
    # The task's own identity-leak settings, {on_leak, words}, over the repository's (tandem.domain.leaks),
    # and what the scans of its outputs found; a task with findings is not blind.
    leak_settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    leaks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    outputs: Mapped[list[Output]] = relationship(order_by="Output.position", back_populates="task")
    pair: Mapped[Pair | None] = relationship(back_populates="task", uselist=False)
    rounds: Mapped[list[Round]] = relationship(order_by="Round.number", back_populates="task")


class Output(Base):
    """One model's answer to the task: a unified diff or whole files. The model name is secret."""

    __tablename__ = "outputs"
    __table_args__ = (UniqueConstraint("task_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    position: Mapped[int] = mapped_column(Integer)  # order in the submission, not the side
    model: Mapped[str] = mapped_column(String(255))
    patch: Mapped[str | None] = mapped_column(Text)
    files: Mapped[dict[str, str | None] | None] = mapped_column(JSON)

    task: Mapped[Task] = relationship(back_populates="outputs")


class Pair(Base):
    """The two draft PRs of a task. Which output is A lives here and nowhere on GitHub."""

    __tablename__ = "pairs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), unique=True)
    # The draw that decided positions, kept so position balance can be audited.
    a_is_first_output: Mapped[bool] = mapped_column()
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What GitHub last showed of the pair's progress (label state, check run title), so a sync
    # writes only what changed.
    shown_state: Mapped[str | None] = mapped_column(String(16))
    shown_progress: Mapped[str | None] = mapped_column(String(255))
    reviews_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    task: Mapped[Task] = relationship(back_populates="pair")
    sides: Mapped[list[Side]] = relationship(order_by="Side.letter", back_populates="pair")

    def side(self, letter: str) -> Side:
        return next(side for side in self.sides if side.letter == letter)


class Side(Base):
    """Option A or Option B: one output, its branch, its PR and its check run."""

    __tablename__ = "sides"
    __table_args__ = (UniqueConstraint("pair_id", "letter"), Index("ix_sides_pr", "repo_full_name", "pr_number"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id"))
    letter: Mapped[str] = mapped_column(String(1))
    output_id: Mapped[int] = mapped_column(ForeignKey("outputs.id"))
    repo_full_name: Mapped[str] = mapped_column(String(255))
    branch: Mapped[str] = mapped_column(String(255))
    head_sha: Mapped[str | None] = mapped_column(String(64))
    # Set before the create request is sent: if the job dies before the answer is recorded,
    # the next run looks the PR (or check run) up on GitHub instead of creating a second one.
    pr_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pr_number: Mapped[int | None] = mapped_column(Integer)
    pr_url: Mapped[str | None] = mapped_column(String(512))
    check_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_run_id: Mapped[int | None] = mapped_column(BigInteger)
    summary_posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    pair: Mapped[Pair] = relationship(back_populates="sides")
    output: Mapped[Output] = relationship()


class Round(Base):
    """A turn of the conversation: round 1 is the task's prompt, later rounds are follow-up prompts."""

    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("task_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    number: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(BigInteger)
    author_login: Mapped[str | None] = mapped_column(String(255))
    comment_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    comment_url: Mapped[str | None] = mapped_column(String(512))
    delivery_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A follow-up whose comment was deleted: the round is kept but is no longer the current one.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(String(16))  # deleted
    # The lifecycle (tandem.domain.rounds): awaiting_outputs -> applying -> open -> closed.
    status: Mapped[RoundStatus] = mapped_column(one_of(RoundStatus, "ck_rounds_status"), default=RoundStatus.OPEN)
    closed_reason: Mapped[ClosedReason | None] = mapped_column(one_of(ClosedReason, "ck_rounds_closed_reason"))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The models' answers to a follow-up, in the task's output order: [{model, patch, files}];
    # digest tells the same submission again from a different one.
    outputs: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    outputs_digest: Mapped[str | None] = mapped_column(String(64))
    submitted_by: Mapped[str | None] = mapped_column(String(255))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the runner reported when it could not answer: [{model, reason, at}].
    runner_failures: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Steps of applying the round done on GitHub (each recorded once done, so a re-run skips it).
    bodies_shown_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviews_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When both sides' CI had first finished on the round's heads (tandem.domain.ci): raters are told once.
    ci_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    task: Mapped[Task] = relationship(back_populates="rounds")
    sides: Mapped[list[RoundSide]] = relationship(order_by="RoundSide.letter", back_populates="round")

    def side(self, letter: str) -> RoundSide | None:
        return next((side for side in self.sides if side.letter == letter), None)


class RoundSide(Base):
    """One side in one round: the head it started from and the one it ends at, its check run and
    its "round N is ready" comment (each create preceded by a recorded intent, as in tandem.domain.pairs)."""

    __tablename__ = "round_sides"
    __table_args__ = (UniqueConstraint("round_id", "letter"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    letter: Mapped[str] = mapped_column(String(1))
    parent_sha: Mapped[str | None] = mapped_column(String(64))  # the side's head when the round started
    head_sha: Mapped[str | None] = mapped_column(String(64))  # the round's commit (or round 1's head)
    # The side's whole change from the task's base at head_sha, recorded with the head so exports
    # need no git: the unified diff, and the text of each file it changed ({path: text}, null for
    # a deleted file; binary files left out). NULL for rounds recorded before they were kept.
    diff: Mapped[str | None] = mapped_column(Text)
    files: Mapped[dict[str, str | None] | None] = mapped_column(JSON)
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_run_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_run_id: Mapped[int | None] = mapped_column(BigInteger)
    comment_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comment_id: Mapped[int | None] = mapped_column(BigInteger)

    round: Mapped[Round] = relationship(back_populates="sides")
