"""Incremental exports: every write that changes an export object is in the change feed, and a
cursor hands the next run exactly what changed in between, also when transactions commit out of
the order in which they wrote."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from tandem.domain import changes, judging
from tandem.domain.commands import CommandContext, command_names, find_invocations, run_comment
from tandem.domain.export import export_judgments
from tandem.infra.models import ExportChange, Judgment, Pair
from tests.support.judging import HEAD_A, T0, USERS, comment_ref, deliver, failing_check, new_pair, open_round


class Feed:
    """Runs of `tandem export --cursor` one after the other, as a nightly job would."""

    def __init__(self, storage):
        self.storage = storage
        with storage.transaction() as session:
            self.token = changes.token(session)

    def next(self, **filters) -> list[tuple]:
        out = io.StringIO()
        with self.storage.transaction() as session:
            until = changes.token(session)
            export_judgments(session, out, cursor=self.token, until=until, **filters)
        self.token = until
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        return [
            (r["kind"], r["rater_login"] if r["kind"] != "round" else r["round"], r.get("verdict"), r.get("current"))
            for r in rows
        ]


def line_comment(session, pair_id: int, comment_id: int, who: str = "alice"):
    return judging.record_line_comment(
        session,
        session.get(Pair, pair_id),
        "A",
        comment_id=comment_id,
        url=None,
        delivery_id=f"d-{comment_id}",
        author_id=USERS[who],
        author_login=who,
        path="pager.py",
        body="crashes on 0",
        line=3,
        diff_side="RIGHT",
        commit_sha=HEAD_A,
        created_at=T0,
    )


def test_each_write_reaches_the_next_incremental_export_once(storage):
    pair_id = new_pair(storage)
    feed = Feed(storage)
    deliver(storage, pair_id, "/prefer A", comment_id=1)
    assert feed.next() == [("judgment", "alice", "A", True)]
    assert feed.next() == []
    # A revote: the new version and the one it superseded.
    deliver(storage, pair_id, "/prefer B", comment_id=2)
    assert feed.next() == [("judgment", "alice", "A", False), ("judgment", "alice", "B", True)]
    deliver(storage, pair_id, "/prefer tie", "bob", comment_id=3)
    deliver(storage, pair_id, "/approve @bob", "rev", roles=("reviewer",), comment_id=4)
    assert feed.next() == [("judgment", "bob", "tie", True)]
    # A withdrawn review (its comment deleted) changes the judgment it reviewed.
    with storage.transaction() as session:
        judging.comment_deleted(session, 4)
    assert feed.next() == [("judgment", "bob", "tie", True)]
    # Scores and line comments travel with every version of the rater's vote in the round.
    deliver(storage, pair_id, "/rate A correctness=4", comment_id=5)
    assert feed.next() == [("judgment", "alice", "A", False), ("judgment", "alice", "B", True)]
    deliver(storage, pair_id, "/rate B security=2", "carol", comment_id=6)
    assert feed.next() == [("ratings", "carol", None, True)]
    with storage.transaction() as session:
        line_comment(session, pair_id, 70, "carol")
    assert feed.next() == [("ratings", "carol", None, True)]
    with storage.transaction() as session:
        judging.delete_line_comment(session, 70)
    assert feed.next() == [("ratings", "carol", None, True)]
    deliver(storage, pair_id, "/undo", "bob", comment_id=7)
    assert feed.next() == [("judgment", "bob", "tie", False)]
    with storage.transaction() as session:
        judging.comment_deleted(session, 6)
    assert feed.next() == [("ratings", "carol", None, False)]
    # A follow-up round.
    deliver(storage, pair_id, "/followup Now add a test", comment_id=8)
    open_round(storage, pair_id, 2)
    assert ("round", 2, None, None) in feed.next()
    assert feed.next() == []


def test_an_incremental_export_keeps_to_its_repository(storage):
    mine, theirs = new_pair(storage), new_pair(storage, repo="evals/mirror-2")
    feed = Feed(storage)
    deliver(storage, mine, "/prefer A", comment_id=1)
    deliver(storage, theirs, "/prefer B", "bob", comment_id=2)
    assert feed.next(repo="evals/mirror-2") == [("judgment", "bob", "B", True)]


def test_a_cursor_is_refused_on_another_kind_of_database(storage):
    with storage.transaction() as session, pytest.raises(Exception, match="not a cursor"):
        export_judgments(session, io.StringIO(), cursor="oracle.12")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_change_committed_after_a_later_one_is_not_skipped(storage):
    """Transaction 1 writes first and commits last. A cursor that resumed after the highest
    change seen would skip its change for good; the token remembers it as pending."""
    slow_pair, fast_pair = new_pair(storage), new_pair(storage)
    feed = Feed(storage)
    with storage.transaction() as slow:
        ctx = CommandContext.for_pair(slow, slow.get(Pair, slow_pair), comment_ref("bob", comment_id=80), started_at=T0)
        run_comment(ctx, find_invocations("/prefer B", command_names()), roles={"rater"})
        slow.flush()  # its change row is written, not committed
        deliver(storage, fast_pair, "/prefer A", comment_id=1)  # a later transaction, committed
        assert feed.next() == [("judgment", "alice", "A", True)]
    with storage.transaction() as session:
        slow_txid, fast_txid = (
            session.scalar(
                select(func.max(ExportChange.txid))
                .join(Judgment, Judgment.id == ExportChange.judgment_id)
                .where(Judgment.pair_id == pair_id)
            )
            for pair_id in (slow_pair, fast_pair)
        )
    assert slow_txid < fast_txid
    assert feed.next() == [("judgment", "bob", "B", True)]
    assert feed.next() == []


def test_a_ci_report_reaches_the_next_incremental_export_with_the_votes_of_its_task(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A", comment_id=1)
    feed = Feed(storage)
    failing_check(storage, pair_id)
    # The vote's object carries its round's CI, which just changed.
    assert feed.next() == [("judgment", "alice", "A", True)]
    assert feed.next() == []
