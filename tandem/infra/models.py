"""What Tandem records. Judgments and ratings are never erased: a newer one supersedes an older one."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Enum,
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
    ReviewDecision,
    ReviewState,
    RoundStatus,
    Strength,
    SupersededReason,
    TaskStatus,
    Verdict,
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
    clone_url: Mapped[str | None] = mapped_column(String(1024))
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


class ProcessedDelivery(Base):
    """A webhook delivery whose effects are committed; written in the same transaction as them."""

    __tablename__ = "processed_deliveries"

    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeadLetterKind(enum.StrEnum):
    UNPROCESSABLE = "unprocessable"  # the payload itself cannot be processed: never retried
    FAILED = "failed"  # a handler failed on every try: a bug, until shown otherwise


class DeadLetter(Base):
    """A delivery answered 202 that could not be processed, parked with its body and the reason
    until `tandem deliveries retry` replays it. Kept in the database, not in Redis: it must
    outlive any TTL and a Redis that lost its data, and it is deleted in the same transaction
    that records the delivery as processed."""

    __tablename__ = "dead_letters"

    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[DeadLetterKind] = mapped_column(
        Enum(DeadLetterKind, native_enum=False, length=16, values_callable=lambda kinds: [k.value for k in kinds])
    )
    reason: Mapped[str] = mapped_column(Text)
    parked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retried_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # replayed, not yet processed


class OutboxEntry(Base):
    """A job a delivery's effects call for (an answer on GitHub, a sync, a follow-up prompt for
    the model runner), written in the same transaction as those effects: an outbox. It is queued
    right after the commit; one that a crash left behind is queued by the periodic sweep."""

    __tablename__ = "outbox_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The RQ job's id (ids of deleted rows may be reused, so not derived from `id`).
    job_id: Mapped[str] = mapped_column(String(64), default=lambda: f"outbox-{uuid.uuid4().hex}")
    queue: Mapped[str] = mapped_column(String(64))
    func: Mapped[str] = mapped_column(String(255))  # dotted path of the job function
    args: Mapped[list[Any]] = mapped_column(JSON)
    kwargs: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # for jobs with keyword-only arguments
    # Queue it only if no job with this key is waiting already (e.g. one sync per pair).
    coalesce_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ApiToken(Base):
    """A bearer token for the HTTP API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    team: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[str]] = mapped_column(JSON)  # tandem.infra.tokens.Scope values
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExportChange(Base):
    """A write that changed what the export shows (tandem.domain.changes): one judgment (judgment_id),
    everything of one rater in a round (rater_id, no judgment_id: scores, line comments), or a
    round itself (neither). Incremental exports read these instead of the whole history."""

    __tablename__ = "export_changes"
    # AUTOINCREMENT: on SQLite the id is the cursor, so an id must never be handed out twice.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(Integer)
    rater_id: Mapped[int | None] = mapped_column(BigInteger)
    judgment_id: Mapped[int | None] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # PostgreSQL: the writing transaction's id (pg_current_xact_id), the cursor's order.
    txid: Mapped[int | None] = mapped_column(BigInteger, index=True)


from tandem.domain import changes  # noqa: E402,F401  (the listener that writes ExportChange rows)
