"""The judging domain on SQLite and PostgreSQL: votes, history, idempotency, reviews, rounds.

Each `deliver` is one comment processed in its own transaction, as a worker would: the body is
parsed with the real command finder and run through the command registry.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tandem.domain import judging
from tandem.domain.commands import CommandContext, Rubric, command_names, find_invocations, run_comment
from tandem.domain.judging import Refused, ReviewRules, Vote
from tandem.infra.models import Judgment, JudgmentReview, LineComment, Pair, Rating, Round
from tests.support.judging import (
    HEAD_A,
    HEAD_B,
    T0,
    USERS,
    comment_ref,
    current,
    deliver,
    errors,
    history,
    judgments,
    make_pair,
    minutes,
    new_comment_id,
    new_pair,
    open_round,
)

# Votes ------------------------------------------------------------------------------------


def test_a_vote_is_recorded_with_its_provenance(storage):
    pair_id = new_pair(storage)
    [outcome] = deliver(
        storage,
        pair_id,
        "/prefer A slightly\n\nA handles the empty page.\nB crashes.",
        comment_id=42,
        side="B",
        at=T0 + timedelta(minutes=25),
    )
    assert outcome.ok and outcome.changed
    assert outcome.message == "Recorded @alice's vote in round 1: **A** (slightly)."
    [j] = judgments(storage, pair_id)
    assert (j.verdict, j.strength, j.rationale) == ("A", "slightly", "A handles the empty page.\nB crashes.")
    assert (j.rater_id, j.rater_login, j.review_state) == (USERS["alice"], "alice", "pending")
    assert (j.head_sha_a, j.head_sha_b) == (HEAD_A, HEAD_B)
    assert (j.comment_id, j.on_side, j.source, j.delivery_id) == (42, "B", "comment", "delivery-42-0")
    assert j.comment_url.endswith("#issuecomment-42")
    assert j.voted_at == T0 + timedelta(minutes=25)
    assert j.time_on_task_seconds == 25 * 60
    assert j.recorded_at.tzinfo is not None and j.superseded_at is None


def test_a_new_vote_supersedes_the_old_one_and_keeps_it(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A")
    deliver(storage, pair_id, "/prefer B much\nOn second thought B's tests are better.")
    deliver(storage, pair_id, "/prefer tie", "bob")
    first, second, _bobs = judgments(storage, pair_id)
    assert (first.superseded_reason, first.superseded_by_id) == ("revote", second.id)
    assert first.superseded_by_comment_id == second.comment_id
    assert first.superseded_at is not None
    assert current(storage, pair_id) == [("alice", "B", "much"), ("bob", "tie", None)]


def test_the_same_comment_processed_twice_is_recorded_once(storage):
    pair_id = new_pair(storage)
    body = "/prefer A\nreason\n/rate A correctness=4 security=5\n/followup Now add tests."
    first = deliver(storage, pair_id, body, comment_id=7)
    again = deliver(storage, pair_id, body, comment_id=7)
    assert [o.changed for o in first] == [True, True, True]
    assert [o.changed for o in again] == [False, False, False]
    assert again[0].message == "Already recorded @alice's vote in round 1: **A** (clearly)."
    assert len(judgments(storage, pair_id)) == 1
    with storage.transaction() as session:
        assert session.query(Rating).count() == 2
        assert [r.number for r in session.scalars(select(Round).order_by(Round.number))] == [1, 2]


def test_replaying_an_old_comment_does_not_undo_later_votes(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A", comment_id=1)
    deliver(storage, pair_id, "/prefer B", comment_id=2)
    deliver(storage, pair_id, "/undo", comment_id=3)
    deliver(storage, pair_id, "/prefer tie", comment_id=4)
    for comment_id, body in [(1, "/prefer A"), (2, "/prefer B"), (3, "/undo")]:
        assert all(not o.changed for o in deliver(storage, pair_id, body, comment_id=comment_id))
    assert current(storage, pair_id) == [("alice", "tie", None)]
    assert len(judgments(storage, pair_id)) == 3


def test_record_judgment_directly(storage):
    pair_id = new_pair(storage)
    with storage.transaction() as session:
        pair = session.get(Pair, pair_id)
        ctx = CommandContext.for_pair(session, pair, comment_ref(comment_id=9), started_at=None)
        j, created = judging.record_judgment(ctx, Vote("b", None, "  why  "))
        assert created and (j.verdict, j.strength, j.rationale, j.time_on_task_seconds) == ("B", "clearly", "why", None)
        assert judging.record_judgment(ctx, Vote("B", "clearly", "why")) == (j, False)
        # Its own refusal: with `require_ci`, a vote written before both sides' CI has finished.
        early = replace(ctx, comment=comment_ref("bob", comment_id=10), review=ReviewRules(require_ci=True))
        with pytest.raises(Refused, match="takes votes once both options' CI has finished"):
            judging.record_judgment(early, Vote("A"))
        assert judging.current_judgment(session, j.round_id, USERS["bob"]) is None


# Edits and deletions ----------------------------------------------------------------------


def test_editing_a_comment_edits_its_vote(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A\nfirst reason", comment_id=10)
    edit = T0 + timedelta(hours=1)
    [outcome] = deliver(storage, pair_id, "/prefer B slightly\nbetter reason", comment_id=10, edited_at=edit)
    assert outcome.message == "Updated @alice's vote: **B** (slightly)."
    old, new = judgments(storage, pair_id)
    assert (old.superseded_reason, old.superseded_by_id) == ("edited", new.id)
    assert (new.verdict, new.strength, new.rationale, new.comment_id) == ("B", "slightly", "better reason", 10)
    assert new.voted_at == edit and new.time_on_task_seconds == 3600

    # The same edit delivered again, or an edit that leaves the vote alone, writes nothing.
    assert deliver(storage, pair_id, "/prefer B slightly\nbetter reason", comment_id=10, edited_at=edit) == []
    # An edit that removes the command retracts the vote.
    [outcome] = deliver(storage, pair_id, "never mind", comment_id=10, edited_at=edit + timedelta(minutes=1))
    assert outcome.message == "Retracted @alice's vote: the edited comment has no `/prefer`."
    assert history(storage, pair_id) == [("alice", "A", "edited", new.id), ("alice", "B", "edited", None)]
    assert current(storage, pair_id) == []
    # Putting it back is a vote again.
    deliver(storage, pair_id, "/prefer A", comment_id=10, edited_at=edit + timedelta(minutes=2))
    assert current(storage, pair_id) == [("alice", "A", "clearly")]


def test_an_edit_that_adds_a_vote_records_it(storage):
    pair_id = new_pair(storage)
    assert deliver(storage, pair_id, "/prefre A", comment_id=11) == []
    deliver(storage, pair_id, "/prefer A", comment_id=12)
    [outcome] = deliver(storage, pair_id, "/prefer B", comment_id=11, edited_at=T0 + timedelta(hours=1))
    assert outcome.ok
    assert history(storage, pair_id)[0][2] == "revote"
    assert current(storage, pair_id) == [("alice", "B", "clearly")]


def test_an_edit_that_changes_the_vote_is_the_raters_latest_word(storage):
    pair_id = new_pair(storage)
    at = T0 + timedelta(minutes=10)
    deliver(storage, pair_id, "/prefer A\n/rate A correctness=3", comment_id=13, at=at)
    deliver(storage, pair_id, "/prefer B", comment_id=14, at=T0 + timedelta(minutes=20))
    # Fixing the score under the old vote leaves that vote as it was: the newer vote stays.
    [outcome] = deliver(
        storage, pair_id, "/prefer A\n/rate A correctness=4", comment_id=13, at=at, edited_at=T0 + timedelta(minutes=30)
    )
    assert outcome.message == "Updated @alice's scores: A correctness 4."
    assert current(storage, pair_id) == [("alice", "B", "clearly")]
    # Changing the old comment's vote is the last thing the rater wrote: it is their vote now.
    [outcome] = deliver(
        storage,
        pair_id,
        "/prefer tie\n/rate A correctness=4",
        comment_id=13,
        at=at,
        edited_at=T0 + timedelta(minutes=40),
    )
    assert outcome.message == "Updated @alice's vote: a **tie** (A and B are equally good)."
    _first, second, third = judgments(storage, pair_id)
    assert history(storage, pair_id) == [
        ("alice", "A", "revote", second.id),
        ("alice", "B", "revote", third.id),
        ("alice", "tie", None, None),
    ]


def test_an_invalid_edit_keeps_the_vote_and_says_why(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A", comment_id=15)
    outcomes = deliver(storage, pair_id, "/prefer C", comment_id=15, edited_at=T0 + timedelta(hours=1))
    assert errors(outcomes) == ["`/prefer C`: the side must be A, B, tie or neither"]
    assert current(storage, pair_id) == [("alice", "A", "clearly")]


def test_deleting_a_comment_retracts_what_it_recorded(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A\n/rate A correctness=5\n/followup Add a test.", comment_id=20)
    open_round(storage, pair_id, 2)
    deliver(storage, pair_id, "/rate B correctness=2", comment_id=21)
    with storage.transaction() as session:
        assert judging.comment_deleted(session, 20) == 3
        assert judging.comment_deleted(session, 20) == 0
        assert judging.comment_deleted(session, 999) == 0
    [j] = judgments(storage, pair_id)
    assert (j.superseded_reason, j.superseded_by_id, j.superseded_by_comment_id) == ("deleted", None, 20)
    with storage.transaction() as session:
        ratings = {(r.side, r.superseded_reason) for r in session.scalars(select(Rating))}
        assert ratings == {("A", "deleted"), ("B", None)}
        second = session.scalars(select(Round).where(Round.number == 2)).one()
        assert (second.withdrawn_reason, second.prompt) == ("deleted", "Add a test.")
        task = session.get(Pair, pair_id).task
        assert judging.current_round(session, task).number == 1
    # The next follow-up is round 3: a withdrawn round keeps its number.
    [outcome] = deliver(storage, pair_id, "/followup Try again.", comment_id=22)
    assert outcome.message == "Round 3 started with @alice's follow-up prompt; it opens once both models have answered."


def test_deleting_a_review_comment_withdraws_the_review(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A")
    deliver(storage, pair_id, "/approve @alice", "rev", roles=("reviewer",), comment_id=30)
    deliver(storage, pair_id, "/reject @alice too thin", "rev2", roles=("reviewer",), comment_id=31)
    assert judgments(storage, pair_id)[0].review_state == "returned"
    with storage.transaction() as session:
        assert judging.comment_deleted(session, 31) == 1
    assert judgments(storage, pair_id)[0].review_state == "approved"
    with storage.transaction() as session:
        judging.comment_deleted(session, 30)
        reviews = session.scalars(select(JudgmentReview)).all()
        assert all(r.withdrawn_at is not None for r in reviews) and len(reviews) == 2
    assert judgments(storage, pair_id)[0].review_state == "pending"


# Undo -------------------------------------------------------------------------------------


def test_undo_retracts_the_current_vote(storage):
    pair_id = new_pair(storage)
    assert errors(deliver(storage, pair_id, "/undo", at=T0)) == ["`/undo`: you have no vote to undo in round 1"]
    deliver(storage, pair_id, "/prefer A", at=T0 + timedelta(minutes=1))
    deliver(storage, pair_id, "/prefer neither", "bob", at=T0 + timedelta(minutes=1))
    [outcome] = deliver(storage, pair_id, "/undo", comment_id=40, at=T0 + timedelta(minutes=2))
    assert outcome.message == "Retracted @alice's vote in round 1: **A** (clearly)."
    assert current(storage, pair_id) == [("bob", "neither", None)]
    assert history(storage, pair_id)[0][2] == "undo"
    assert judgments(storage, pair_id)[0].superseded_by_comment_id == 40
    assert errors(deliver(storage, pair_id, "/undo", at=T0 + timedelta(minutes=3))) == [
        "`/undo`: you have no vote to undo in round 1"
    ]
    assert [o.changed for o in deliver(storage, pair_id, "/undo", comment_id=40, at=T0 + timedelta(minutes=2))] == [
        False
    ]


# Out of order -----------------------------------------------------------------------------
#
# Deliveries come late, twice and out of order: retries, rate-limit reschedules, several
# workers, redelivery after an outage (newest first). The comments' own times decide.


def test_a_vote_processed_after_a_newer_one_does_not_replace_it(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer B", comment_id=2, at=minutes(20))
    [outcome] = deliver(storage, pair_id, "/prefer A", comment_id=1, at=minutes(10))
    assert outcome.changed
    assert outcome.message == "Recorded @alice's vote in round 1: **A** (clearly). A vote written after it stands."
    assert current(storage, pair_id) == [("alice", "B", "clearly")]
    newer, older = judgments(storage, pair_id)
    assert (older.superseded_reason, older.superseded_by_id, older.superseded_by_comment_id) == ("revote", newer.id, 2)
    assert older.superseded_at is not None and older.voted_at == minutes(10)
    # Replays of either change nothing.
    assert not deliver(storage, pair_id, "/prefer A", comment_id=1, at=minutes(10))[0].changed
    assert not deliver(storage, pair_id, "/prefer B", comment_id=2, at=minutes(20))[0].changed
    assert len(judgments(storage, pair_id)) == 2 and current(storage, pair_id) == [("alice", "B", "clearly")]


def test_an_edit_processed_before_its_comment_stays_current(storage):
    pair_id = new_pair(storage)
    [edited] = deliver(storage, pair_id, "/prefer B slightly", comment_id=3, at=minutes(10), edited_at=minutes(15))
    assert edited.message == "Updated @alice's vote: **B** (slightly)."
    [created] = deliver(storage, pair_id, "/prefer A", comment_id=3, at=minutes(10))
    assert created.changed and created.message.endswith("A vote written after it stands.")
    edit, original = judgments(storage, pair_id)
    assert history(storage, pair_id) == [("alice", "B", None, None), ("alice", "A", "edited", edit.id)]
    assert (edit.voted_at, original.voted_at) == (minutes(15), minutes(10))


def test_edits_processed_out_of_order_end_with_the_last_one_written(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A", comment_id=4, at=minutes(10))
    deliver(storage, pair_id, "/prefer tie", comment_id=4, at=minutes(10), edited_at=minutes(40))
    [late] = deliver(storage, pair_id, "/prefer B much", comment_id=4, at=minutes(10), edited_at=minutes(35))
    assert late.changed and late.message == "Updated @alice's vote: **B** (much). A vote written after it stands."
    assert current(storage, pair_id) == [("alice", "tie", None)]
    _first, last, middle = judgments(storage, pair_id)
    assert (middle.superseded_reason, middle.superseded_by_id) == ("edited", last.id)
    # An edit that left the vote as it was, processed late, writes nothing.
    assert deliver(storage, pair_id, "/prefer A", comment_id=4, at=minutes(10), edited_at=minutes(20)) == []
    # An edit that removed the vote, written before the last edit, retracted the first vote then:
    # the history becomes the one processing in order gives.
    [removed] = deliver(storage, pair_id, "no vote after all", comment_id=4, at=minutes(10), edited_at=minutes(30))
    assert (
        removed.message
        == "Retracted @alice's vote: the edited comment has no `/prefer`. A vote written after it stands."
    )
    assert current(storage, pair_id) == [("alice", "tie", None)] and len(judgments(storage, pair_id)) == 3
    assert [(j.verdict, j.superseded_reason, j.superseded_by_id) for j in judgments(storage, pair_id)] == [
        ("A", "edited", None),
        ("tie", None, None),
        ("B", "edited", last.id),
    ]


def test_a_vote_removed_by_an_edit_and_put_back_by_a_later_one_in_any_order(storage):
    versions = [("/prefer A", None), ("no vote", minutes(20)), ("/prefer B", minutes(30))]
    for order in itertools.permutations(versions):
        pair_id = new_pair(storage)
        comment_id = new_comment_id()
        for body, edited_at in order:
            deliver(storage, pair_id, body, comment_id=comment_id, at=minutes(10), edited_at=edited_at)
        assert current(storage, pair_id) == [("alice", "B", "clearly")], order


def test_scores_processed_out_of_order_end_with_the_last_ones_written(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/rate A correctness=2", comment_id=5, at=minutes(20))
    [late] = deliver(storage, pair_id, "/rate A correctness=5 security=3", comment_id=6, at=minutes(10))
    assert late.message == "Recorded @alice's scores in round 1: A correctness 5 (no longer current), A security 3."
    # Edits of one comment, the later one processed first.
    deliver(storage, pair_id, "/rate B correctness=1", comment_id=7, at=minutes(30))
    deliver(storage, pair_id, "/rate B correctness=4", comment_id=7, at=minutes(30), edited_at=minutes(50))
    deliver(storage, pair_id, "/rate B correctness=3", comment_id=7, at=minutes(30), edited_at=minutes(45))
    with storage.transaction() as session:
        round_id = session.scalars(select(Round)).one().id
        assert judging.current_ratings(session, round_id, USERS["alice"]) == {
            "A": {"correctness": 2, "security": 3},
            "B": {"correctness": 4},
        }
        rows = session.scalars(select(Rating).order_by(Rating.id)).all()
        assert [(r.comment_id, r.side, r.axis, r.score, r.created_at, r.superseded_reason) for r in rows] == [
            (5, "A", "correctness", 2, minutes(20), None),
            (6, "A", "correctness", 5, minutes(10), "revote"),
            (6, "A", "security", 3, minutes(10), None),
            (7, "B", "correctness", 1, minutes(30), "edited"),
            (7, "B", "correctness", 4, minutes(50), None),
            (7, "B", "correctness", 3, minutes(45), "edited"),
        ]


def test_an_undo_never_retracts_a_vote_written_after_it(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A", comment_id=8, at=minutes(10))
    deliver(storage, pair_id, "/prefer B", comment_id=10, at=minutes(30))
    [outcome] = deliver(storage, pair_id, "/undo", comment_id=9, at=minutes(20))
    assert outcome.changed and outcome.message == (
        "Retracted @alice's vote in round 1: **A** (clearly). Your vote written after it, **B** (clearly), stands."
    )
    assert current(storage, pair_id) == [("alice", "B", "clearly")]
    # The history is the one processing in order gives: A undone by the /undo, B current.
    assert history(storage, pair_id) == [("alice", "A", "undo", None), ("alice", "B", None, None)]
    assert judgments(storage, pair_id)[0].superseded_by_comment_id == 9
    assert not deliver(storage, pair_id, "/undo", comment_id=9, at=minutes(20))[0].changed
    # An /undo written before any vote has nothing to undo, whenever it is processed.
    assert errors(deliver(storage, pair_id, "/undo", comment_id=7, at=minutes(5))) == [
        "`/undo`: you have no vote to undo in round 1"
    ]
    assert current(storage, pair_id) == [("alice", "B", "clearly")]


def test_versions_of_a_deleted_comment_processed_after_the_deletion_stay_deleted(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A\n/rate A correctness=3", comment_id=11, at=minutes(10))
    with storage.transaction() as session:
        assert judging.comment_deleted(session, 11) == 2
    # An edit made before the deletion, delivered after it (a retry).
    [outcome, _] = deliver(
        storage, pair_id, "/prefer B\n/rate A correctness=4", comment_id=11, at=minutes(10), edited_at=minutes(12)
    )
    assert outcome.message == "Updated @alice's vote: **B** (clearly). It has been retracted since."
    assert current(storage, pair_id) == []
    # As in order: the edit replaced the first version, the deletion ended the edited one.
    assert [row[2] for row in history(storage, pair_id)] == ["edited", "deleted"]
    with storage.transaction() as session:
        assert [r.superseded_reason for r in session.scalars(select(Rating))] == ["edited", "deleted"]
    # A comment written earlier, processed late, does not come back either.
    deliver(storage, pair_id, "/prefer tie", comment_id=9, at=minutes(5))
    assert current(storage, pair_id) == []


def test_a_review_is_of_the_vote_as_it_stood_when_the_review_was_written(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A", comment_id=12, at=minutes(10))
    deliver(storage, pair_id, "/prefer B\nchanged my mind", comment_id=14, at=minutes(30))
    [outcome] = deliver(storage, pair_id, "/approve", "rev", roles=("reviewer",), comment_id=13, at=minutes(20))
    assert outcome.message == "@rev approved @alice's vote in round 1 (@alice has voted again since)"
    assert [(j.verdict, j.review_state, j.superseded_at is None) for j in judgments(storage, pair_id)] == [
        ("A", "approved", False),
        ("B", "pending", True),
    ]


def test_a_vote_racing_a_followup_goes_into_the_round_it_was_written_in(storage):
    pair_id = new_pair(storage)
    with storage.transaction() as session:
        judging.ensure_first_round(session, session.get(Pair, pair_id).task)
    with storage.transaction() as session:
        pair = session.get(Pair, pair_id)
        ctx = CommandContext.for_pair(session, pair, comment_ref(comment_id=16, at=minutes(20)), started_at=T0)
        # Meanwhile another worker starts round 2 with a follow-up written before the vote.
        deliver(storage, pair_id, "/followup Add a test.", "bob", comment_id=15, at=minutes(15))
        open_round(storage, pair_id, 2, at=minutes(16))
        [outcome] = run_comment(ctx, find_invocations("/prefer A", command_names()), roles={"rater"})
    assert outcome.message == "Recorded @alice's vote in round 2: **A** (clearly)."
    # A vote written before the follow-up, processed after it, is a vote on round 1.
    [outcome] = deliver(storage, pair_id, "/prefer B", "carol", comment_id=14, at=minutes(10))
    assert outcome.message == "Recorded @carol's vote in round 1: **B** (clearly)."
    assert [(o.rater_login, o.number) for o in votes_and_rounds(storage, pair_id)] == [("alice", 2), ("carol", 1)]


def votes_and_rounds(storage, pair_id: int) -> list:
    with storage.transaction() as session:
        return list(
            session.execute(
                select(Judgment.rater_login, Round.number)
                .join(Round, Round.id == Judgment.round_id)
                .where(Judgment.pair_id == pair_id)
                .order_by(Judgment.id)
            )
        )


# The property: any order of a rater's comments, edits, deletions and /undos ends as processing
# them in time order.

VOTE_BODIES = ("/prefer A", "/prefer A much\nit is much better", "/prefer B slightly", "/prefer tie", "/prefer neither")


@st.composite
def comment_events(draw) -> list[tuple[int, datetime, datetime | None, str | None]]:
    """One rater's comments (1-4) with their edits (0-2 each), some of them deleted, as
    (comment, created_at, edited_at, body), at distinct times; a deletion has body None and the
    time it was deleted as edited_at. A comment is a vote and scores, or an /undo."""
    comments = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 3)) == 0:
            comments.append((["/undo"], draw(st.booleans())))
            continue
        count = draw(st.integers(1, 3))
        held = [
            st.lists(st.sampled_from([*values, None]), min_size=count, max_size=count)
            for values in (VOTE_BODIES, range(1, 6), range(1, 6))
        ]
        versions = []
        for vote, a, b in zip(*(draw(strategy) for strategy in held), strict=False):
            lines = [vote] if vote else []
            lines += [f"/rate A correctness={a}"] if a else []
            lines += [f"/rate B security={b}"] if b else []
            versions.append("\n".join(lines) or "Looking at it.")
        comments.append((versions, draw(st.booleans())))
    total = sum(len(versions) + deleted for versions, deleted in comments)
    times = iter(draw(st.lists(st.integers(1, 500), min_size=total, max_size=total, unique=True)))
    events = []
    for index, (versions, deleted) in enumerate(comments):
        moments = sorted(minutes(next(times)) for _ in range(len(versions) + deleted))
        for number, body in enumerate(versions):
            events.append((index, moments[0], moments[number] if number else None, body))
        if deleted:
            events.append((index, moments[0], moments[-1], None))
    return events


def final_state(storage, pair_id: int, comment_ids: list[int]) -> tuple:
    """Every vote and score of the rater, with the comment (by index) and time of each, and how
    it ended."""
    index = {comment_id: i for i, comment_id in enumerate(comment_ids)}
    with storage.transaction() as session:
        rows = session.scalars(select(Judgment).where(Judgment.pair_id == pair_id)).all()
        by_id = {j.id: (index[j.comment_id], j.voted_at) for j in rows}
        votes = sorted(
            (
                j.verdict,
                j.strength,
                j.rationale,
                index[j.comment_id],
                j.voted_at,
                j.superseded_at is None,
                j.superseded_reason,
                by_id.get(j.superseded_by_id),
                index.get(j.superseded_by_comment_id),
            )
            for j in rows
        )
        task_id = session.get(Pair, pair_id).task_id
        scores = sorted(
            (
                r.side,
                r.axis,
                r.score,
                index[r.comment_id],
                r.created_at,
                r.superseded_at is None,
                r.superseded_reason,
                by_id.get(r.judgment_id),
            )
            for r in session.scalars(select(Rating).where(Rating.task_id == task_id))
        )
    return votes, scores


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=comment_events(), data=st.data())
def test_any_processing_order_ends_as_the_time_order(storage, events, data):
    order = data.draw(st.permutations(events))

    def process(sequence, pair_id: int, comment_ids: list[int]) -> tuple:
        for index, created_at, edited_at, body in sequence:
            if body is None:
                with storage.transaction() as session:
                    judging.comment_deleted(session, comment_ids[index], task_id=session.get(Pair, pair_id).task_id)
            else:
                deliver(storage, pair_id, body, comment_id=comment_ids[index], at=created_at, edited_at=edited_at)
        return final_state(storage, pair_id, comment_ids)

    def on_a_new_pair(sequence) -> tuple:
        return process(sequence, new_pair(storage), [new_comment_id() for _ in range(4)])

    in_time_order = on_a_new_pair(sorted(events, key=lambda event: event[2] or event[1]))
    pair_id, comment_ids = new_pair(storage), [new_comment_id() for _ in range(4)]
    assert process(order, pair_id, comment_ids) == in_time_order
    # Every comment, edit and deletion delivered again, on the same pair: nothing changes.
    assert process(order, pair_id, comment_ids) == in_time_order


def test_a_deletion_or_undo_processed_before_the_vote_it_ends_still_ends_it(storage):
    """Redelivery after an outage sends the newest first: the end of a vote before the vote."""
    pair_id = new_pair(storage)
    with storage.transaction() as session:
        judging.comment_deleted(session, 20, task_id=session.get(Pair, pair_id).task_id)
    [outcome] = deliver(storage, pair_id, "/prefer A", comment_id=20, at=minutes(10))
    assert outcome.message == "Recorded @alice's vote in round 1: **A** (clearly). It has been retracted since."
    assert current(storage, pair_id) == [] and history(storage, pair_id) == [("alice", "A", "deleted", None)]
    # An /undo processed before the vote it undoes: told there is nothing yet, but it holds.
    assert errors(deliver(storage, pair_id, "/undo", "bob", comment_id=23, at=minutes(30))) == [
        "`/undo`: you have no vote to undo in round 1"
    ]
    deliver(storage, pair_id, "/prefer B", "bob", comment_id=22, at=minutes(20))
    assert current(storage, pair_id) == []
    # An edit removing the vote, processed before the vote.
    deliver(storage, pair_id, "never mind", "carol", comment_id=24, at=minutes(10), edited_at=minutes(15))
    deliver(storage, pair_id, "/prefer tie", "carol", comment_id=24, at=minutes(10))
    assert current(storage, pair_id) == []
    assert history(storage, pair_id)[1:] == [("bob", "B", "undo", None), ("carol", "tie", "edited", None)]


# Ratings ----------------------------------------------------------------------------------


def test_ratings_supersede_per_axis_and_side_and_link_the_vote(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/rate A correctness=3 security=4")
    deliver(storage, pair_id, "/prefer A")
    [outcome] = deliver(storage, pair_id, "/rate A correctness=5\n/rate B correctness=2")[:1]
    assert outcome.message == "Recorded @alice's scores in round 1: A correctness 5."
    deliver(storage, pair_id, "/rate A security=1", "bob")
    with storage.transaction() as session:
        rows = session.scalars(select(Rating).order_by(Rating.id)).all()
        assert [(r.rater_login, r.side, r.axis, r.score, r.superseded_reason) for r in rows] == [
            ("alice", "A", "correctness", 3, "revote"),
            ("alice", "A", "security", 4, None),
            ("alice", "A", "correctness", 5, None),
            ("alice", "B", "correctness", 2, None),
            ("bob", "A", "security", 1, None),
        ]
        vote = session.scalars(select(Judgment)).one()
        assert [r.judgment_id for r in rows[:3]] == [None, None, vote.id]
        round_id = vote.round_id
        assert judging.current_ratings(session, round_id, USERS["alice"]) == {
            "A": {"security": 4, "correctness": 5},
            "B": {"correctness": 2},
        }


def test_editing_a_comment_edits_its_ratings(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/rate A correctness=3 security=4\n/rate B correctness=2", comment_id=60)
    edit = T0 + timedelta(hours=1)
    [outcome] = deliver(storage, pair_id, "/rate A correctness=4 reliability=5", comment_id=60, edited_at=edit)
    assert outcome.message == "Updated @alice's scores: A correctness 4, A reliability 5."
    with storage.transaction() as session:
        rows = session.scalars(select(Rating).order_by(Rating.id)).all()
        assert [(r.side, r.axis, r.score, r.superseded_reason) for r in rows] == [
            ("A", "correctness", 3, "edited"),
            ("A", "security", 4, "edited"),
            ("B", "correctness", 2, "edited"),
            ("A", "correctness", 4, None),
            ("A", "reliability", 5, None),
        ]
    # An invalid /rate in the edit changes nothing and says why.
    outcomes = deliver(storage, pair_id, "/rate A correctness=7", comment_id=60, edited_at=edit)
    assert errors(outcomes) == ["`/rate A correctness=7`: correctness must be an integer from 1 to 5"]
    assert deliver(storage, pair_id, "/rate A reliability=5 correctness=4", comment_id=60, edited_at=edit) == []
    # A score dropped by one edit and put back by a later one is current again; a score of a
    # comment written in between is not undone by an edit that leaves the old score as it was.
    deliver(storage, pair_id, "/rate A reliability=5", comment_id=60, edited_at=edit + timedelta(minutes=1))
    deliver(storage, pair_id, "/rate A reliability=2", comment_id=61, at=edit + timedelta(minutes=2))
    deliver(
        storage, pair_id, "/rate A reliability=5 correctness=4", comment_id=60, edited_at=edit + timedelta(minutes=3)
    )
    with storage.transaction() as session:
        round_id = session.scalars(select(Round)).one().id
        assert judging.current_ratings(session, round_id, USERS["alice"]) == {"A": {"reliability": 2, "correctness": 4}}


def test_record_ratings_validates_against_the_rubric(storage):
    pair_id = new_pair(storage)
    with storage.transaction() as session:
        pair = session.get(Pair, pair_id)
        ctx = CommandContext.for_pair(session, pair, comment_ref(), rubric=Rubric(("style", "tests"), (0, 3)))
        rows, created = judging.record_ratings(ctx, "b", {"Style": 0, "tests": 3})
        assert created and [(r.side, r.axis, r.score) for r in rows] == [("B", "style", 0), ("B", "tests", 3)]
        with pytest.raises(Refused) as error:
            judging.record_ratings(ctx, "A", {"speed": 1})
        assert str(error.value) == "unknown axis `speed`; this repository's axes are style, tests"
        with pytest.raises(Refused, match="tests must be an integer from 0 to 3"):
            judging.record_ratings(ctx, "A", {"tests": 4})
        with pytest.raises(Refused, match="the side must be A or B"):
            judging.record_ratings(ctx, "C", {"tests": 1})


def test_a_task_rubric_overrides_the_repository_axes(storage):
    with storage.transaction() as session:
        pair = make_pair(session)
        pair.task.rubric = ["Speed", "tests"]
        session.flush()
        ctx = CommandContext.for_pair(session, pair, comment_ref(), rubric=Rubric(scale=(1, 10)))
        assert ctx.rubric == Rubric(("speed", "tests"), (1, 10))
    with pytest.raises(ValueError):
        Rubric(("code quality",))
    with pytest.raises(ValueError):
        Rubric(scale=(5, 1))


# Follow-ups -------------------------------------------------------------------------------


def test_a_followup_starts_the_next_round(storage):
    pair_id = new_pair(storage, prompt="Fix the pager")
    deliver(storage, pair_id, "/prefer A")
    body = "/followup Now handle negative pages\nand add a test.\n\n  Keep the API."
    [outcome] = deliver(storage, pair_id, body, "bob", comment_id=70)
    assert outcome.message == "Round 2 started with @bob's follow-up prompt; it opens once both models have answered."
    open_round(storage, pair_id, 2)
    deliver(storage, pair_id, "/prefer B")
    with storage.transaction() as session:
        first, second = session.scalars(select(Round).order_by(Round.number)).all()
        assert (first.number, first.prompt, first.comment_id) == (1, "Fix the pager", None)
        assert (second.prompt, second.author_login, second.author_id) == (
            "Now handle negative pages\nand add a test.\n\n  Keep the API.",
            "bob",
            USERS["bob"],
        )
        assert (second.comment_id, second.delivery_id) == (70, "delivery-70-0")
        assert second.comment_url.endswith("70")
        votes = session.scalars(select(Judgment).order_by(Judgment.id)).all()
        # A vote in a new round does not supersede the one in the old round.
        assert [(v.round_id, v.verdict, v.superseded_at) for v in votes] == [
            (first.id, "A", None),
            (second.id, "B", None),
        ]
    assert errors(deliver(storage, pair_id, "/followup")) == [
        "`/followup`: write the follow-up prompt after `/followup`, on the same line or on the lines below"
    ]


def test_the_first_round_is_created_once(storage):
    with storage.transaction() as session:
        pair = make_pair(session, prompt="Do X")
        first = judging.current_round(session, pair.task)
        assert (first.number, first.prompt) == (1, "Do X")
        assert judging.ensure_first_round(session, pair.task) is first
        assert judging.current_round(session, pair.task) is first
        assert session.query(Round).count() == 1


# Reviews ----------------------------------------------------------------------------------


def test_a_reviewer_approves_the_only_pending_vote(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A")
    [outcome] = deliver(storage, pair_id, "/approve", "rev", roles=("reviewer",), comment_id=80)
    assert outcome.message == "@rev approved @alice's vote in round 1"
    [j] = judgments(storage, pair_id)
    assert j.review_state == "approved"
    with storage.transaction() as session:
        [review] = session.scalars(select(JudgmentReview)).all()
        assert (review.judgment_id, review.reviewer_login, review.decision, review.comment_id) == (
            j.id,
            "rev",
            "approved",
            80,
        )
    # Replayed: recorded once.
    [again] = deliver(storage, pair_id, "/approve", "rev", roles=("reviewer",), comment_id=80)
    assert not again.changed
    # Nothing else is waiting.
    assert errors(deliver(storage, pair_id, "/approve", "rev", roles=("reviewer",))) == [
        "`/approve`: no vote is waiting for your review in round 1; to change a decision, name the rater: "
        "`/approve @rater`"
    ]


def test_an_ambiguous_review_asks_for_a_login(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A")
    deliver(storage, pair_id, "/prefer B", "bob")
    assert errors(deliver(storage, pair_id, "/reject not convincing", "rev", roles=("reviewer",))) == [
        "`/reject not convincing`: 2 raters have votes waiting for review in round 1 (@alice, @bob); "
        "name one, e.g. `/reject @alice <reason>`"
    ]
    [outcome] = deliver(
        storage, pair_id, "/reject @Bob. The rationale ignores\nthe failing test.", "rev", roles=("reviewer",)
    )
    assert outcome.message == (
        "@rev sent back @bob's vote in round 1: `The rationale ignores the failing test.`. "
        "@bob, vote again with `/prefer` (or edit your vote) to resubmit it for review."
    )
    assert outcome.reply, "the rater is told on the PR, mentioned"
    assert errors(deliver(storage, pair_id, "/approve @carol", "rev", roles=("reviewer",))) == [
        "`/approve @carol`: `@carol` has no vote in round 1"
    ]
    # The rejected rater votes again: the new vote waits for review, and is the only one left with alice's.
    deliver(storage, pair_id, "/approve @alice", "rev", roles=("reviewer",))
    deliver(storage, pair_id, "/prefer B slightly\nfixed my rationale", "bob")
    [outcome] = deliver(storage, pair_id, "/approve", "rev", roles=("reviewer",))
    assert outcome.message == "@rev approved @bob's vote in round 1"
    assert [(j.rater_login, j.review_state, j.superseded_reason) for j in judgments(storage, pair_id)] == [
        ("alice", "approved", None),
        ("bob", "returned", "revote"),
        ("bob", "approved", None),
    ]


def test_reviews_are_refused_for_ones_own_vote_and_without_a_reason(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A", "rev")
    assert errors(deliver(storage, pair_id, "/approve", "rev", roles=("reviewer",))) == [
        "`/approve`: you cannot review your own vote"
    ]
    assert errors(deliver(storage, pair_id, "/reject @rev", "rev2", roles=("reviewer",))) == [
        "`/reject @rev`: say why, e.g. `/reject @rater <reason>`; the reason is shown to the rater"
    ]
    assert errors(deliver(storage, pair_id, "/approve", "alice", roles=("rater",))) == [
        "`/approve`: only reviewers can use `/approve`"
    ]
    assert judgments(storage, pair_id)[0].review_state == "pending"


# Progress ---------------------------------------------------------------------------------


def test_progress_counts_current_votes_by_review_state(storage):
    pair_id = new_pair(storage)

    def progress(required=2):
        with storage.transaction() as session:
            return judging.progress(session, session.get(Pair, pair_id), required)

    assert progress() == judging.Progress(1, 2, 0, 0, 0, 0, ())
    deliver(storage, pair_id, "/prefer A")
    deliver(storage, pair_id, "/prefer B", "bob")
    deliver(storage, pair_id, "/approve @alice", "rev", roles=("reviewer",))
    assert progress() == judging.Progress(1, 2, 2, 1, 0, 1, ("alice", "bob"))
    assert not progress().complete
    deliver(storage, pair_id, "/reject @bob wrong", "rev", roles=("reviewer",))
    assert (progress().returned, progress().complete) == (1, False)
    deliver(storage, pair_id, "/prefer B", "bob")
    deliver(storage, pair_id, "/approve @bob", "rev", roles=("reviewer",))
    assert progress().complete and progress(1).complete and not progress(3).complete
    deliver(storage, pair_id, "/followup more", "carol")
    assert progress() == judging.Progress(2, 2, 0, 0, 0, 0, ())


def test_a_closed_task_takes_no_more_votes(storage):
    pair_id = new_pair(storage)
    with storage.transaction() as session:
        session.get(Pair, pair_id).closed_at = T0
    assert errors(deliver(storage, pair_id, "/prefer A\n/help")) == [
        "`/prefer A`: this task is closed and takes no more votes"
    ]
    assert judgments(storage, pair_id) == []


def test_a_closed_tasks_record_is_final(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A\n/rate A correctness=4", comment_id=90)
    deliver(storage, pair_id, "/approve @alice", "rev", roles=("reviewer",), comment_id=91)
    with storage.transaction() as session:
        session.get(Pair, pair_id).closed_at = T0 + timedelta(hours=1)
    # Reviewers can no longer change a decision, nor raters their votes.
    assert errors(deliver(storage, pair_id, "/reject @alice not convincing", "rev2", roles=("reviewer",))) == [
        "`/reject @alice not convincing`: this task is closed; its votes can no longer be reviewed"
    ]
    assert errors(deliver(storage, pair_id, "/approve @alice", "rev2", roles=("reviewer",))) == [
        "`/approve @alice`: this task is closed; its votes can no longer be reviewed"
    ]
    assert deliver(storage, pair_id, "no vote", comment_id=90, edited_at=T0 + timedelta(hours=2)) == []
    # Deleting a comment retracts nothing either: not the vote, its scores, nor the review.
    with storage.transaction() as session:
        assert judging.comment_deleted(session, 90) == 0
        assert judging.comment_deleted(session, 91) == 0
        assert [r.superseded_at for r in session.scalars(select(Rating))] == [None]
        assert session.scalars(select(JudgmentReview)).one().withdrawn_at is None
    [(login, verdict, reason, _)] = history(storage, pair_id)
    assert (login, verdict, reason) == ("alice", "A", None)
    assert judgments(storage, pair_id)[0].review_state == "approved"


# Line comments ----------------------------------------------------------------------------


def test_line_comments_are_recorded_edited_and_deleted(storage):
    pair_id = new_pair(storage)
    fields = dict(
        comment_id=900,
        url="https://github.com/x/y/pull/2#discussion_r900",
        delivery_id="d-900",
        author_id=USERS["alice"],
        author_login="alice",
        path="src/pager.py",
        body="off by one here",
        line=12,
        start_line=10,
        diff_side="RIGHT",
        commit_sha=HEAD_B,
        created_at=T0,
    )
    with storage.transaction() as session:
        pair = session.get(Pair, pair_id)
        row = judging.record_line_comment(session, pair, "b", **fields)
        assert judging.record_line_comment(session, pair, "B", **fields) is row
        assert (row.side, row.path, row.line, row.start_line, row.diff_side, row.commit_sha) == (
            "B",
            "src/pager.py",
            12,
            10,
            "RIGHT",
            HEAD_B,
        )
        assert row.round_id == judging.current_round(session, pair.task).id
        edited = dict(fields, body="off by one here; see line 14", updated_at=T0 + timedelta(minutes=5))
        judging.record_line_comment(session, pair, "B", **edited)
        stale = dict(fields, body="stale", updated_at=T0 + timedelta(minutes=1))
        judging.record_line_comment(session, pair, "B", **stale)
    with storage.transaction() as session:
        [row] = session.scalars(select(LineComment)).all()
        assert (row.body, row.updated_at, row.deleted_at) == (
            "off by one here; see line 14",
            T0 + timedelta(minutes=5),
            None,
        )
        assert judging.delete_line_comment(session, 900, T0 + timedelta(hours=1)).deleted_at == T0 + timedelta(hours=1)
        assert judging.delete_line_comment(session, 901) is None
        late = dict(fields, body="after delete", updated_at=T0 + timedelta(hours=2))
        assert judging.record_line_comment(session, session.get(Pair, pair_id), "B", **late).body == (
            "off by one here; see line 14"
        )


def test_a_vote_value_object_normalizes():
    assert Vote("a", None, " x ") == Vote("A", "clearly", "x")
    assert Vote("TIE").strength is None
    with pytest.raises(Refused, match="the strength must be slightly, clearly or much"):
        Vote("A", "hugely")
    with pytest.raises(Refused, match="the side must be A, B, tie or neither"):
        Vote("C")
    with pytest.raises(Refused, match="takes no strength"):
        Vote("tie", "much")


def test_a_followup_or_review_processed_after_its_deletion_stays_withdrawn(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A", comment_id=50, at=minutes(5))
    with storage.transaction() as session:
        task_id = session.get(Pair, pair_id).task_id
        judging.comment_deleted(session, 51, task_id=task_id)
        judging.comment_deleted(session, 52, task_id=task_id)
    [followup] = deliver(storage, pair_id, "/followup Add a test.", "bob", comment_id=51, at=minutes(10))
    assert not followup.changed  # no follow-up job for a deleted prompt
    deliver(storage, pair_id, "/approve", "rev", roles=("reviewer",), comment_id=52, at=minutes(11))
    with storage.transaction() as session:
        assert [(r.number, r.withdrawn_reason) for r in session.scalars(select(Round).order_by(Round.number))] == [
            (1, None),
            (2, "deleted"),
        ]
        assert session.scalars(select(JudgmentReview)).one().withdrawn_at is not None
    assert [j.review_state for j in judgments(storage, pair_id)] == ["pending"]


def test_who_may_start_a_round_and_how_many_rounds_follow_the_repository_settings(storage):
    from tandem.domain.commands import help_text
    from tandem.domain.repo_config import RepoConfig

    pair_id = new_pair(storage)
    two_rounds = RepoConfig(followups={"max_rounds": 2})
    assert deliver(storage, pair_id, "/followup One more.", rubric=two_rounds)[0].ok
    open_round(storage, pair_id, 2)
    assert errors(deliver(storage, pair_id, "/followup And another.", rubric=two_rounds)) == [
        "`/followup And another.`: this task has had its 2 rounds (`followups.max_rounds` in .github/tandem.yml)"
    ]
    reviewers = RepoConfig(followups={"allowed": "reviewers"})
    assert errors(deliver(storage, pair_id, "/followup Mine.", rubric=reviewers)) == [
        "`/followup Mine.`: only reviewers can use `/followup`"
    ]
    assert deliver(storage, pair_id, "/followup Theirs.", "rev", roles=("reviewer",), rubric=reviewers)[0].ok
    assert errors(deliver(storage, pair_id, "/followup No.", rubric=RepoConfig(followups={"allowed": "nobody"}))) == [
        "`/followup No.`: `/followup` is turned off in this repository (`followups.allowed: nobody`)"
    ]
    with storage.transaction() as session:
        session.get(Pair, pair_id).closed_at = T0
    assert errors(deliver(storage, pair_id, "/followup Late.")) == [
        "`/followup Late.`: this task is closed and takes no more votes"
    ]
    assert "| `/followup <prompt>` | reviewers |" in help_text(reviewers)
    assert "| `/followup <prompt>` | raters |" in help_text()


def test_each_vote_judges_the_heads_of_the_round_it_was_written_in(storage):
    pair_id = new_pair(storage)
    open_round(storage, pair_id, 1)
    deliver(storage, pair_id, "/followup Add a test.", "bob", comment_id=15, at=minutes(15))
    round_2 = {"A": "c" * 40, "B": "d" * 40}
    with storage.transaction() as session:  # the apply job put round 2's commits on the PRs
        for side in session.get(Pair, pair_id).sides:
            side.head_sha = round_2[side.letter]
    open_round(storage, pair_id, 2, at=minutes(30))
    deliver(storage, pair_id, "/prefer B", "carol", comment_id=14, at=minutes(10))  # in round 1, processed late
    waited = deliver(storage, pair_id, "/prefer A", "alice", comment_id=16, at=minutes(20))
    deliver(storage, pair_id, "/prefer A", "alice", comment_id=17, at=minutes(31))
    assert errors(waited) == [
        "`/prefer A`: round 2 is waiting for the models' answers: votes count once it is ready on the PRs"
    ]
    assert [(j.rater_login, j.head_sha_a, j.head_sha_b) for j in judgments(storage, pair_id)] == [
        ("carol", HEAD_A, HEAD_B),
        ("alice", round_2["A"], round_2["B"]),
    ]
