"""One vocabulary: the database refuses a status, verdict, strength, review state or reason that
is not one of tandem.domain.vocabulary's, and the outbox's table is called what it is

Revision ID: 0010_vocabulary
Revises: 0009_ci_and_returns

Every value Tandem has written is among these: the statuses and reasons since their columns were
added (0001, 0005), review states since 0009 made "rejected" ones "returned". The values are
written out here, as they are now, so that a later change to the vocabulary needs a migration.
On SQLite a table takes a CHECK constraint only by being copied (batch mode; tandem.infra.migrate turns
foreign keys off while it runs, as SQLite asks).
"""

from alembic import op

revision = "0010_vocabulary"
down_revision = "0009_ci_and_returns"
branch_labels = None
depends_on = None

SUPERSEDED_REASONS = ("revote", "edited", "undo", "deleted")
CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "tasks": {
        "status": ("queued", "opening", "awaiting_outputs", "applying", "open", "closed", "failed"),
    },
    "rounds": {
        "status": ("awaiting_outputs", "applying", "open", "closed"),
        "closed_reason": ("judged", "superseded", "expired", "failed", "withdrawn"),
    },
    "judgments": {
        "verdict": ("A", "B", "tie", "neither"),
        "strength": ("slightly", "clearly", "much"),
        "superseded_reason": SUPERSEDED_REASONS,
        "review_state": ("pending", "approved", "returned"),
    },
    "ratings": {"superseded_reason": SUPERSEDED_REASONS},
    "judgment_reviews": {"decision": ("approved", "rejected")},
}


def upgrade() -> None:
    op.rename_table("follow_ups", "outbox_entries")
    op.drop_index("ix_follow_ups_created_at", table_name="outbox_entries")
    op.create_index("ix_outbox_entries_created_at", "outbox_entries", ["created_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":  # named after their table, as a new one's are
        op.execute("ALTER SEQUENCE follow_ups_id_seq RENAME TO outbox_entries_id_seq")
        op.execute("ALTER INDEX follow_ups_pkey RENAME TO outbox_entries_pkey")
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch_op:
            for column, values in columns.items():
                batch_op.create_check_constraint(
                    f"ck_{table}_{column}", f"{column} IN ({', '.join(repr(value) for value in values)})"
                )


def downgrade() -> None:
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.drop_constraint(f"ck_{table}_{column}", type_="check")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER INDEX outbox_entries_pkey RENAME TO follow_ups_pkey")
        op.execute("ALTER SEQUENCE outbox_entries_id_seq RENAME TO follow_ups_id_seq")
    op.drop_index("ix_outbox_entries_created_at", table_name="outbox_entries")
    op.create_index("ix_follow_ups_created_at", "outbox_entries", ["created_at"], unique=False)
    op.rename_table("outbox_entries", "follow_ups")
