"""command versions and deleted comments: retractions get times of their own

Revision ID: 0002_retraction_times
Revises: 0001

The versions are backfilled from the judgments and ratings already recorded: each row is a
version written at its own time; a retraction by an edit becomes an empty version at the time it
was recorded (the best known), an /undo an undo version at that time, and a deletion a deleted
comment.
"""

import sqlalchemy as sa
from alembic import op

import tandem.db

revision = '0002_retraction_times'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    versions = op.create_table('command_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('rater_id', sa.BigInteger(), nullable=False),
    sa.Column('comment_id', sa.BigInteger(), nullable=False),
    sa.Column('target', sa.String(length=80), nullable=False),
    sa.Column('written_at', tandem.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('edited', sa.Boolean(), nullable=False),
    sa.Column('value', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('delivery_id', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', tandem.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], ),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('comment_id', 'target', 'written_at', 'edited')
    )
    with op.batch_alter_table('command_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_command_versions_comment_id'), ['comment_id'], unique=False)
        batch_op.create_index('ix_command_versions_rater', ['round_id', 'rater_id', 'target'], unique=False)
        batch_op.create_index(batch_op.f('ix_command_versions_task_id'), ['task_id'], unique=False)

    deleted = op.create_table('deleted_comments',
    sa.Column('comment_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.String(length=64), nullable=True),
    sa.Column('recorded_at', tandem.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], ),
    sa.PrimaryKeyConstraint('comment_id')
    )
    with op.batch_alter_table('deleted_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deleted_comments_task_id'), ['task_id'], unique=False)

    _backfill(op.get_bind(), versions, deleted)


def _backfill(bind, versions: sa.Table, deleted: sa.Table) -> None:
    rows: dict[tuple, dict] = {}
    gone: dict[int, dict] = {}
    first_seen: dict[tuple, object] = {}

    def add(row, target, at, value, *, comment_id=None, edited=None):
        comment_id = comment_id or row.comment_id
        first_seen[(comment_id, target)] = min(first_seen.get((comment_id, target), at), at)
        rows[(comment_id, target, at, edited)] = dict(
            task_id=row.task_id, round_id=row.round_id, rater_id=row.rater_id, comment_id=comment_id,
            target=target, written_at=at, edited=edited, value=value, delivery_id=row.delivery_id,
            recorded_at=row.superseded_at or at,
        )

    def retraction(row, target, superseded_by_id=None):
        if row.superseded_reason == 'edited' and superseded_by_id is None:  # an edit removed it
            add(row, target, row.superseded_at, None, edited=True)
        elif row.superseded_reason == 'deleted':
            gone[row.comment_id] = dict(
                comment_id=row.comment_id, task_id=row.task_id, delivery_id=None, recorded_at=row.superseded_at
            )

    judgments = sa.table('judgments', *(sa.column(name) for name in (
        'task_id', 'round_id', 'rater_id', 'comment_id', 'verdict', 'strength', 'rationale', 'delivery_id',
        'voted_at', 'superseded_at', 'superseded_reason', 'superseded_by_id', 'superseded_by_comment_id')))
    for row in bind.execute(sa.select(judgments)):
        add(row, 'vote', row.voted_at, {'verdict': row.verdict, 'strength': row.strength, 'rationale': row.rationale})
        retraction(row, 'vote', row.superseded_by_id)
        if row.superseded_reason == 'undo' and row.superseded_by_comment_id is not None:
            add(row, 'undo', row.superseded_at, True, comment_id=row.superseded_by_comment_id, edited=False)
    ratings = sa.table('ratings', *(sa.column(name) for name in (
        'task_id', 'round_id', 'rater_id', 'comment_id', 'side', 'axis', 'score', 'delivery_id',
        'created_at', 'superseded_at', 'superseded_reason')))
    for row in bind.execute(sa.select(ratings)):
        add(row, f'{row.side}:{row.axis}', row.created_at, row.score)
        retraction(row, f'{row.side}:{row.axis}')
    for version in rows.values():
        if version['edited'] is None:  # the earliest version of a comment is the comment as created
            version['edited'] = version['written_at'] > first_seen[(version['comment_id'], version['target'])]
    if rows:
        bind.execute(versions.insert(), list(rows.values()))
    if gone:
        bind.execute(deleted.insert(), list(gone.values()))


def downgrade() -> None:
    # Dropping a table drops its indexes.
    op.drop_table('deleted_comments')
    op.drop_table('command_versions')
