"""command versions and deleted comments: retractions get times of their own

Revision ID: 0004_retraction_times
Revises: 0003_dead_letters

The versions are backfilled from the judgments and ratings already recorded: each row is a
version written at its own time; a retraction by an edit becomes an empty version, and an /undo
an undo version, placed right before the rater's next version (or when it was recorded, if
sooner); a deletion becomes a deleted comment.
"""

from collections import defaultdict
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import tandem.infra.db

revision = "0004_retraction_times"
down_revision = "0003_dead_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    versions = op.create_table(
        "command_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("rater_id", sa.BigInteger(), nullable=False),
        sa.Column("comment_id", sa.BigInteger(), nullable=False),
        sa.Column("target", sa.String(length=80), nullable=False),
        sa.Column("written_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("edited", sa.Boolean(), nullable=False),
        sa.Column("value", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["rounds.id"],
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("comment_id", "target", "written_at", "edited"),
    )
    with op.batch_alter_table("command_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_command_versions_comment_id"), ["comment_id"], unique=False)
        batch_op.create_index("ix_command_versions_rater", ["round_id", "rater_id", "target"], unique=False)
        batch_op.create_index(batch_op.f("ix_command_versions_task_id"), ["task_id"], unique=False)

    deleted = op.create_table(
        "deleted_comments",
        sa.Column("comment_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", tandem.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
        ),
        sa.PrimaryKeyConstraint("comment_id"),
    )
    with op.batch_alter_table("deleted_comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deleted_comments_task_id"), ["task_id"], unique=False)

    _backfill(op.get_bind(), versions, deleted)


def _backfill(bind, versions: sa.Table, deleted: sa.Table) -> None:
    moment = tandem.infra.db.UTCDateTime(timezone=True)
    judgments = sa.table(
        "judgments",
        *(
            sa.column(name)
            for name in (
                "task_id",
                "round_id",
                "rater_id",
                "comment_id",
                "verdict",
                "strength",
                "rationale",
                "delivery_id",
                "superseded_reason",
                "superseded_by_id",
                "superseded_by_comment_id",
            )
        ),
        sa.column("voted_at", moment),
        sa.column("superseded_at", moment),
    )
    ratings = sa.table(
        "ratings",
        *(
            sa.column(name)
            for name in (
                "task_id",
                "round_id",
                "rater_id",
                "comment_id",
                "side",
                "axis",
                "score",
                "delivery_id",
                "superseded_reason",
            )
        ),
        sa.column("created_at", moment),
        sa.column("superseded_at", moment),
    )
    groups: dict[tuple, list] = defaultdict(list)  # (round, rater, target) -> [(written at, row, value)]
    for row in bind.execute(sa.select(judgments)):
        vote = {"verdict": row.verdict, "strength": row.strength, "rationale": row.rationale}
        groups[(row.round_id, row.rater_id, "vote")].append((row.voted_at, row, vote))
    for row in bind.execute(sa.select(ratings)):
        groups[(row.round_id, row.rater_id, f"{row.side}:{row.axis}")].append((row.created_at, row, row.score))

    rows: dict[tuple, dict] = {}
    gone: dict[int, dict] = {}
    first_seen: dict[tuple, object] = {}

    def add(row, target, at, value, *, comment_id=None, edited=None):
        comment_id = comment_id or row.comment_id
        first_seen[(comment_id, target)] = min(first_seen.get((comment_id, target), at), at)
        rows[(comment_id, target, at, edited)] = dict(
            task_id=row.task_id,
            round_id=row.round_id,
            rater_id=row.rater_id,
            comment_id=comment_id,
            target=target,
            written_at=at,
            edited=edited,
            value=value,
            delivery_id=row.delivery_id,
            recorded_at=row.superseded_at or at,
        )

    for (_round, _rater, target), items in groups.items():
        items.sort(key=lambda item: (item[0], item[1].comment_id))
        for index, (at, row, value) in enumerate(items):
            add(row, target, at, value)
            if row.superseded_at is None:
                continue
            # A retraction kept no time of its own: it came after this version, before the
            # rater's next one, and no later than it was recorded.
            later = [t for t, _row, _value in items[index + 1 :] if t > at]
            ended = max(at, min([row.superseded_at, *(t - timedelta(microseconds=1) for t in later[:1])]))
            replaced = getattr(row, "superseded_by_id", None) is not None or any(
                other.comment_id == row.comment_id for _t, other, _v in items[index + 1 :]
            )
            if row.superseded_reason == "edited" and not replaced:  # an edit removed it
                add(row, target, ended, None, edited=True)
            elif row.superseded_reason == "undo" and row.superseded_by_comment_id is not None:
                add(row, "undo", ended, True, comment_id=row.superseded_by_comment_id, edited=False)
            elif row.superseded_reason == "deleted":
                gone[row.comment_id] = dict(
                    comment_id=row.comment_id, task_id=row.task_id, delivery_id=None, recorded_at=row.superseded_at
                )
    for version in rows.values():
        if version["edited"] is None:  # the earliest version of a comment is the comment as created
            version["edited"] = version["written_at"] > first_seen[(version["comment_id"], version["target"])]
    if rows:
        bind.execute(versions.insert(), list(rows.values()))
    if gone:
        bind.execute(deleted.insert(), list(gone.values()))


def downgrade() -> None:
    # Dropping a table drops its indexes.
    op.drop_table("deleted_comments")
    op.drop_table("command_versions")
