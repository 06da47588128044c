"""initial schema

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import tandem.infra.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "follow_ups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("func", sa.String(length=255), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("coalesce_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_follow_ups_created_at"), ["created_at"], unique=False)

    op.create_table(
        "installations",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_login", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("account_type", sa.String(length=32), nullable=False),
        sa.Column("repository_selection", sa.String(length=16), nullable=True),
        sa.Column("suspended_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("created_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "processed_deliveries",
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=True),
        sa.Column("processed_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id"),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repo_full_name", sa.String(length=255), nullable=False),
        sa.Column("base", sa.String(length=255), nullable=False),
        sa.Column("base_sha", sa.String(length=64), nullable=True),
        sa.Column("base_branch", sa.String(length=255), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("rubric", sa.JSON(), nullable=True),
        sa.Column("raters", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("submitted_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_repo_full_name"), ["repo_full_name"], unique=False)

    op.create_table(
        "outputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("patch", sa.Text(), nullable=True),
        sa.Column("files", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id", "position"),
    )
    op.create_table(
        "pairs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("a_is_first_output", sa.Boolean(), nullable=False),
        sa.Column("opened_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("shown_state", sa.String(length=16), nullable=True),
        sa.Column("shown_progress", sa.String(length=255), nullable=True),
        sa.Column("reviews_requested_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id"),
    )
    op.create_table(
        "repositories",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("full_name", sa.String(length=255), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("clone_url", sa.String(length=1024), nullable=True),
        sa.Column("removed_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("added_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["installation_id"],
            ["installations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repositories_full_name"), ["full_name"], unique=False)
        batch_op.create_index(batch_op.f("ix_repositories_installation_id"), ["installation_id"], unique=False)

    op.create_table(
        "rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=True),
        sa.Column("author_login", sa.String(length=255), nullable=True),
        sa.Column("comment_id", sa.BigInteger(), nullable=True),
        sa.Column("comment_url", sa.String(length=512), nullable=True),
        sa.Column("delivery_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("comment_id"),
        sa.UniqueConstraint("task_id", "number"),
    )
    op.create_table(
        "judgments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("rater_id", sa.BigInteger(), nullable=False),
        sa.Column("rater_login", sa.String(length=255), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("strength", sa.String(length=16), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("head_sha_a", sa.String(length=64), nullable=True),
        sa.Column("head_sha_b", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("comment_id", sa.BigInteger(), nullable=False),
        sa.Column("comment_url", sa.String(length=512), nullable=True),
        sa.Column("on_side", sa.String(length=1), nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("voted_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("time_on_task_seconds", sa.Double(), nullable=True),
        sa.Column("recorded_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("superseded_by_id", sa.Integer(), nullable=True),
        sa.Column("superseded_reason", sa.String(length=16), nullable=True),
        sa.Column("superseded_by_comment_id", sa.BigInteger(), nullable=True),
        sa.Column("review_state", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["pairs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["rounds.id"],
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_id"],
            ["judgments.id"],
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("judgments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_judgments_comment_id"), ["comment_id"], unique=False)
        batch_op.create_index("ix_judgments_current", ["round_id", "rater_id", "superseded_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_judgments_task_id"), ["task_id"], unique=False)

    op.create_table(
        "line_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(length=1), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.Column("author_login", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("start_line", sa.Integer(), nullable=True),
        sa.Column("diff_side", sa.String(length=8), nullable=True),
        sa.Column("commit_sha", sa.String(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("comment_id", sa.BigInteger(), nullable=False),
        sa.Column("comment_url", sa.String(length=512), nullable=True),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["pairs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["rounds.id"],
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("comment_id"),
    )
    with op.batch_alter_table("line_comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_line_comments_task_id"), ["task_id"], unique=False)

    op.create_table(
        "sides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("letter", sa.String(length=1), nullable=False),
        sa.Column("output_id", sa.Integer(), nullable=False),
        sa.Column("repo_full_name", sa.String(length=255), nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=True),
        sa.Column("pr_requested_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("pr_number", sa.Integer(), nullable=True),
        sa.Column("pr_url", sa.String(length=512), nullable=True),
        sa.Column("check_requested_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("check_run_id", sa.BigInteger(), nullable=True),
        sa.Column("summary_posted_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["outputs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["pairs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pair_id", "letter"),
    )
    with op.batch_alter_table("sides", schema=None) as batch_op:
        batch_op.create_index("ix_sides_pr", ["repo_full_name", "pr_number"], unique=False)

    op.create_table(
        "judgment_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("judgment_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.BigInteger(), nullable=False),
        sa.Column("reviewer_login", sa.String(length=255), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("comment_id", sa.BigInteger(), nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["judgment_id"],
            ["judgments.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("judgment_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_judgment_reviews_judgment_id"), ["judgment_id"], unique=False)

    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("judgment_id", sa.Integer(), nullable=True),
        sa.Column("rater_id", sa.BigInteger(), nullable=False),
        sa.Column("rater_login", sa.String(length=255), nullable=False),
        sa.Column("side", sa.String(length=1), nullable=False),
        sa.Column("axis", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.BigInteger(), nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("superseded_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["judgment_id"],
            ["judgments.id"],
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["rounds.id"],
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ratings_comment_id"), ["comment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ratings_task_id"), ["task_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ratings_task_id"))
        batch_op.drop_index(batch_op.f("ix_ratings_comment_id"))

    op.drop_table("ratings")
    with op.batch_alter_table("judgment_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_judgment_reviews_judgment_id"))

    op.drop_table("judgment_reviews")
    with op.batch_alter_table("sides", schema=None) as batch_op:
        batch_op.drop_index("ix_sides_pr")

    op.drop_table("sides")
    with op.batch_alter_table("line_comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_line_comments_task_id"))

    op.drop_table("line_comments")
    with op.batch_alter_table("judgments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_judgments_task_id"))
        batch_op.drop_index("ix_judgments_current")
        batch_op.drop_index(batch_op.f("ix_judgments_comment_id"))

    op.drop_table("judgments")
    op.drop_table("rounds")
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repositories_installation_id"))
        batch_op.drop_index(batch_op.f("ix_repositories_full_name"))

    op.drop_table("repositories")
    op.drop_table("pairs")
    op.drop_table("outputs")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_repo_full_name"))

    op.drop_table("tasks")
    op.drop_table("processed_deliveries")
    op.drop_table("installations")
    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_follow_ups_created_at"))

    op.drop_table("follow_ups")
    op.drop_table("api_tokens")
