"""CI results per side and round, each vote's CI states, and votes returned to their raters

Revision ID: 0009_ci_and_returns
Revises: 0008_export_indexes

A rejected vote is now returned to its rater (review state "returned", tandem.domain.judging.ReviewState):
the votes recorded as "rejected" before are returned ones.
"""

import sqlalchemy as sa
from alembic import op

import tandem.infra.db

revision = "0009_ci_and_returns"
down_revision = "0008_export_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = tandem.infra.db.UTCDateTime(timezone=True)
    op.create_table(
        "ci_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("letter", sa.String(length=1), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=True),
        sa.Column("report_id", sa.BigInteger(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("reported_at", moment, nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id", "head_sha", "kind", "source", "name"),
    )
    op.create_index(op.f("ix_ci_checks_task_id"), "ci_checks", ["task_id"], unique=False)
    op.add_column("judgments", sa.Column("ci_state_a", sa.String(length=16), nullable=True))
    op.add_column("judgments", sa.Column("ci_state_b", sa.String(length=16), nullable=True))
    op.add_column("rounds", sa.Column("ci_finished_at", moment, nullable=True))
    op.execute("UPDATE judgments SET review_state = 'returned' WHERE review_state = 'rejected'")


def downgrade() -> None:
    op.execute("UPDATE judgments SET review_state = 'rejected' WHERE review_state = 'returned'")
    op.drop_column("rounds", "ci_finished_at")
    op.drop_column("judgments", "ci_state_b")
    op.drop_column("judgments", "ci_state_a")
    op.drop_index(op.f("ix_ci_checks_task_id"), table_name="ci_checks")
    op.drop_table("ci_checks")
