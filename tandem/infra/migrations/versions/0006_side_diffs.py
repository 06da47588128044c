"""round sides: the side's cumulative change from the task's base at the round's head, as a
unified diff and as the full text of the files it changed, so exports need no git

Revision ID: 0006_side_diffs
Revises: 0005_rounds

Nothing is backfilled: computing a diff needs the mirror's git objects, which a migration has
not. Rounds recorded before stay NULL, and the export falls back to the outputs as submitted
(tandem.datasets.responses).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_side_diffs"
down_revision = "0005_rounds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("round_sides", sa.Column("diff", sa.Text(), nullable=True))
    op.add_column("round_sides", sa.Column("files", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("round_sides", "files")
    op.drop_column("round_sides", "diff")
