"""gold and leaks: a task's gold answer, its identity-leak settings and the scans' findings

Revision ID: 0007_gold_and_leaks
Revises: 0006_side_diffs
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_gold_and_leaks"
down_revision = "0006_side_diffs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("gold", sa.JSON(), nullable=True))
    op.add_column("tasks", sa.Column("leak_settings", sa.JSON(), nullable=True))
    op.add_column("tasks", sa.Column("leaks", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    for column in ("leaks", "leak_settings", "gold"):
        op.drop_column("tasks", column)
