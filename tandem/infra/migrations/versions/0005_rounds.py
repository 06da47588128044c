"""rounds: a lifecycle (awaiting outputs, applying, open, closed), the follow-ups' outputs, and
each round's sides; keyword arguments for queued follow-up jobs

Revision ID: 0005_rounds
Revises: 0004_retraction_times

Rounds recorded before are open if they are their task's current round, else closed as
superseded; a task whose pair is closed has its rounds closed as judged. Each round's sides are
backfilled from the pair's current heads only for the current round (older heads were not kept).
"""

import sqlalchemy as sa
from alembic import op

import tandem.infra.db

revision = "0005_rounds"
down_revision = "0004_retraction_times"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = tandem.infra.db.UTCDateTime(timezone=True)
    # Plain ADD COLUMN (no table rebuild: on SQLite that would drop a table others reference).
    op.add_column("rounds", sa.Column("status", sa.String(length=16), nullable=False, server_default="open"))
    op.add_column("rounds", sa.Column("closed_reason", sa.String(length=16), nullable=True))
    op.add_column("rounds", sa.Column("failure_reason", sa.Text(), nullable=True))
    op.add_column("rounds", sa.Column("expires_at", moment, nullable=True))
    op.add_column("rounds", sa.Column("opened_at", moment, nullable=True))
    op.add_column("rounds", sa.Column("closed_at", moment, nullable=True))
    op.add_column("rounds", sa.Column("outputs", sa.JSON(), nullable=True))
    op.add_column("rounds", sa.Column("outputs_digest", sa.String(length=64), nullable=True))
    op.add_column("rounds", sa.Column("submitted_by", sa.String(length=255), nullable=True))
    op.add_column("rounds", sa.Column("submitted_at", moment, nullable=True))
    op.add_column("rounds", sa.Column("runner_failures", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column("rounds", sa.Column("bodies_shown_at", moment, nullable=True))
    op.add_column("rounds", sa.Column("reviews_requested_at", moment, nullable=True))
    op.add_column("follow_ups", sa.Column("kwargs", sa.JSON(), nullable=True))
    op.create_table(
        "round_sides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("letter", sa.String(length=1), nullable=False),
        sa.Column("parent_sha", sa.String(length=64), nullable=True),
        sa.Column("head_sha", sa.String(length=64), nullable=True),
        sa.Column("pushed_at", moment, nullable=True),
        sa.Column("check_run_requested_at", moment, nullable=True),
        sa.Column("check_run_id", sa.BigInteger(), nullable=True),
        sa.Column("comment_requested_at", moment, nullable=True),
        sa.Column("comment_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["rounds.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("round_id", "letter"),
    )
    _backfill(op.get_bind())


def _backfill(bind) -> None:
    rounds = sa.table(
        "rounds",
        sa.column("id"),
        sa.column("task_id"),
        sa.column("number"),
        sa.column("withdrawn_at"),
        sa.column("status"),
        sa.column("closed_reason"),
    )
    tasks = sa.table("tasks", sa.column("id"), sa.column("status"))
    pairs = sa.table("pairs", sa.column("id"), sa.column("task_id"))
    sides = sa.table("sides", sa.column("pair_id"), sa.column("letter"), sa.column("head_sha"))
    round_sides = sa.table("round_sides", sa.column("round_id"), sa.column("letter"), sa.column("head_sha"))
    closed = {row.id for row in bind.execute(sa.select(tasks.c.id).where(tasks.c.status == "closed"))}
    latest: dict[int, tuple[int, int]] = {}
    for row in bind.execute(sa.select(rounds).where(rounds.c.withdrawn_at.is_(None))):
        if row.task_id not in latest or row.number > latest[row.task_id][0]:
            latest[row.task_id] = (row.number, row.id)
    current = {round_id for _number, round_id in latest.values()}
    for row in bind.execute(sa.select(rounds.c.id, rounds.c.task_id)).all():
        if row.task_id in closed:
            values = {"status": "closed", "closed_reason": "judged" if row.id in current else "superseded"}
        elif row.id not in current:
            values = {"status": "closed", "closed_reason": "superseded"}
        else:
            continue
        bind.execute(rounds.update().where(rounds.c.id == row.id).values(**values))
    heads = bind.execute(
        sa.select(pairs.c.task_id, sides.c.letter, sides.c.head_sha).join(sides, sides.c.pair_id == pairs.c.id)
    ).all()
    current_of_task = {task_id: round_id for task_id, (_number, round_id) in latest.items()}
    backfilled = [
        {"round_id": current_of_task[row.task_id], "letter": row.letter, "head_sha": row.head_sha}
        for row in heads
        if row.task_id in current_of_task
    ]
    if backfilled:
        bind.execute(round_sides.insert(), backfilled)


def downgrade() -> None:
    op.drop_table("round_sides")
    op.drop_column("follow_ups", "kwargs")
    for column in (
        "reviews_requested_at",
        "bodies_shown_at",
        "runner_failures",
        "submitted_at",
        "submitted_by",
        "outputs_digest",
        "outputs",
        "closed_at",
        "opened_at",
        "expires_at",
        "failure_reason",
        "closed_reason",
        "status",
    ):
        op.drop_column("rounds", column)
