"""Repositories no longer store a clone URL: GitHub serves every repository's git at
{web address}/{owner}/{name}.git, so the workers derive it (tandem.domain.mirrors.clone_url)
instead of asking GET /repos/{owner}/{repo} on a mirror's first pair.

Revision ID: 0011_clone_url_derived
Revises: 0010_vocabulary
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_clone_url_derived"
down_revision = "0010_vocabulary"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repositories") as batch_op:
        batch_op.drop_column("clone_url")


def downgrade() -> None:
    with op.batch_alter_table("repositories") as batch_op:  # empty: older code asks GitHub again when it needs one
        batch_op.add_column(sa.Column("clone_url", sa.String(length=1024), nullable=True))
