"""Migration 0004 backfills the log of comment versions from what was recorded before it, so that
the first command processed after the upgrade derives the same records again."""

from __future__ import annotations

from sqlalchemy import select

from tandem.domain import judging
from tandem.infra import migrate
from tandem.infra.db import Storage
from tandem.infra.models import CommandVersion, DeletedComment, Judgment, Pair, Rating
from tests.support.judging import deliver, minutes, new_pair

COMMENTS = [  # (body, who, comment id, written at, edited at)
    ("/prefer A\n/rate A correctness=3", "alice", 1, minutes(10), None),
    ("/prefer B much\nbetter", "alice", 2, minutes(20), None),
    ("/prefer A", "bob", 3, minutes(10), None),
    ("no vote after all", "bob", 3, minutes(10), minutes(15)),
    ("/prefer tie", "carol", 4, minutes(10), None),
    ("/undo", "carol", 5, minutes(20), None),
    ("/prefer neither\n/rate B security=2", "rev2", 6, minutes(10), None),
    # Votes after the retractions: they stand, and the retractions keep their reasons.
    ("/prefer B", "bob", 7, minutes(25), None),
    ("/prefer B\n/rate A correctness=4", "carol", 8, minutes(30), None),
    ("/rate A correctness=2", "carol", 8, minutes(30), minutes(35)),
]


def records(storage) -> list[tuple]:
    with storage.transaction() as session:
        votes = [
            (
                j.rater_login,
                j.comment_id,
                j.verdict,
                j.voted_at,
                j.superseded_reason,
                j.superseded_by_id,
                j.superseded_by_comment_id,
            )
            for j in session.scalars(select(Judgment).order_by(Judgment.id))
        ]
        scores = [
            (r.rater_login, r.comment_id, r.side, r.axis, r.score, r.superseded_reason, r.judgment_id)
            for r in session.scalars(select(Rating).order_by(Rating.id))
        ]
    return votes + scores


def process_all(storage, pair_id: int) -> None:
    for body, who, comment_id, at, edited_at in COMMENTS:
        deliver(storage, pair_id, body, who, comment_id=comment_id, at=at, edited_at=edited_at)
    with storage.transaction() as session:
        judging.comment_deleted(session, 6, task_id=session.get(Pair, pair_id).task_id)


def replay_votes(storage, pair_id: int) -> None:
    """Each comment as created again, not the edits and /undos: every rater's records are derived
    anew, with the retractions known only from the backfill."""
    for body, who, comment_id, at, edited_at in COMMENTS:
        if edited_at is None and body != "/undo":
            deliver(storage, pair_id, body, who, comment_id=comment_id, at=at)


def test_the_backfill_derives_the_same_records(database_url):
    storage = Storage.from_url(database_url[0])
    migrate.upgrade(storage.engine)
    pair_id = new_pair(storage)
    process_all(storage, pair_id)
    before = records(storage)
    # As if recorded before 0004: the log is gone; the upgrade rebuilds it from the records.
    migrate.downgrade(storage.engine, "0003_dead_letters")
    migrate.upgrade(storage.engine)
    with storage.transaction() as session:
        assert session.scalars(select(CommandVersion)).all() and session.get(DeletedComment, 6) is not None
    replay_votes(storage, pair_id)
    assert records(storage) == before
    process_all(storage, pair_id)  # and every comment, edit and deletion again: nothing changes
    assert records(storage) == before
    storage.engine.dispose()
