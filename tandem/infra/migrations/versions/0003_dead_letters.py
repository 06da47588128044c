"""dead letters: deliveries that could not be processed, with their body and reason

Revision ID: 0003_dead_letters
Revises: 0002_token_teams
"""

import sqlalchemy as sa
from alembic import op

import tandem.infra.db

revision = "0003_dead_letters"
down_revision = "0002_token_teams"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("unprocessable", "failed", name="deadletterkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("parked_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retried_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("delivery_id"),
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
