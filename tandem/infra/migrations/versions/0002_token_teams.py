"""tasks and API tokens belong to a team; tokens carry scopes

Revision ID: 0002_token_teams
Revises: 0001

What existed before belongs to the team "default", and existing tokens keep what they could do
(submit, read and export); `tandem token revoke` ends them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_token_teams"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("team", sa.String(length=255), nullable=False, server_default="default"))
        batch.create_index("ix_tasks_team", ["team"])
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("team", sa.String(length=255), nullable=False, server_default="default"))
        batch.add_column(sa.Column("scopes", sa.JSON(), nullable=False, server_default='["submit", "read", "export"]'))
    # The defaults were for the rows above; new rows always name their team and scopes.
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("team", server_default=None)
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("team", server_default=None)
        batch.alter_column("scopes", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scopes")
        batch.drop_column("team")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_team")
        batch.drop_column("team")
