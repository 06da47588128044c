"""export indexes and change feed: the export's follow-up queries find one rater's scores and line
comments in a round by index, and incremental exports read export_changes instead of everything

Revision ID: 0008_export_indexes
Revises: 0007_gold_and_leaks

Existing data gets one change per judgment, per (round, rater) with scores or line comments and
per round, dated now: an export --since an earlier time after the upgrade is a full one, never
one that misses something.
"""

import sqlalchemy as sa
from alembic import op

import tandem.infra.db

revision = "0008_export_indexes"
down_revision = "0007_gold_and_leaks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ratings_round_rater", "ratings", ["round_id", "rater_id"])
    op.create_index("ix_line_comments_round_author", "line_comments", ["round_id", "author_id"])
    op.create_table(
        "export_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("rater_id", sa.BigInteger(), nullable=True),
        sa.Column("judgment_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_export_changes_changed_at"), "export_changes", ["changed_at"])
    op.create_index(op.f("ix_export_changes_txid"), "export_changes", ["txid"])
    bind = op.get_bind()
    now = sa.literal(tandem.infra.db.utcnow(), tandem.infra.db.UTCDateTime)
    columns = ["round_id", "rater_id", "judgment_id", "changed_at"]
    changes = sa.table("export_changes", *(sa.column(c) for c in columns))
    judgments = sa.table("judgments", sa.column("id"), sa.column("round_id"), sa.column("rater_id"))
    ratings = sa.table("ratings", sa.column("round_id"), sa.column("rater_id"))
    line_comments = sa.table("line_comments", sa.column("round_id"), sa.column("author_id"))
    rounds = sa.table("rounds", sa.column("id"))
    no_id = sa.cast(sa.null(), sa.Integer())
    for backfill in (
        sa.select(judgments.c.round_id, judgments.c.rater_id, judgments.c.id, now),
        sa.select(ratings.c.round_id, ratings.c.rater_id, no_id, now).distinct(),
        sa.select(line_comments.c.round_id, line_comments.c.author_id, no_id, now).distinct(),
        sa.select(rounds.c.id, sa.cast(sa.null(), sa.BigInteger()), no_id, now),
    ):
        bind.execute(changes.insert().from_select(columns, backfill))


def downgrade() -> None:
    op.drop_index(op.f("ix_export_changes_txid"), table_name="export_changes")
    op.drop_index(op.f("ix_export_changes_changed_at"), table_name="export_changes")
    op.drop_table("export_changes")
    op.drop_index("ix_line_comments_round_author", table_name="line_comments")
    op.drop_index("ix_ratings_round_rater", table_name="ratings")
