"""Return to rater, on SQLite and PostgreSQL: a rejected vote goes back to its rater, their next
vote resubmits it, approvals needed and reviewers who rated are configurable, the history keeps
every step, and the review queue lists what waits."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tandem.domain import judging, review_history, review_queue
from tandem.domain.commands.registry import Resubmitted
from tandem.domain.repo_config import RepoConfig
from tandem.infra.models import Judgment, Pair
from tests.support.judging import T0, deliver, errors, judgments, new_pair

REVIEWER = {"roles": ("reviewer",)}


def at(minutes: int) -> dict:
    return {"at": T0 + timedelta(minutes=minutes)}


def states(storage, pair_id: int) -> list[tuple[str, str, str | None]]:
    return [(j.rater_login, j.review_state, j.superseded_reason) for j in judgments(storage, pair_id)]


def test_a_rejected_vote_goes_back_to_its_rater_and_their_next_vote_resubmits_it(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A\nshort", **at(10))
    [returned] = deliver(
        storage, pair_id, "/reject @alice Say why A handles the empty page.", "rev", **REVIEWER, **at(20)
    )
    assert returned.reply and "@alice, vote again" in returned.message
    assert "`Say why A handles the empty page.`" in returned.message
    assert states(storage, pair_id) == [("alice", "returned", None)]

    # A returned vote cannot be approved until it is resubmitted; the reply says why.
    assert errors(deliver(storage, pair_id, "/approve @alice", "rev2", **REVIEWER, **at(25))) == [
        "`/approve @alice`: @alice's vote in round 1 was sent back and has not been resubmitted; "
        "it can be approved once they vote again or edit their vote"
    ]
    [again] = deliver(storage, pair_id, "/prefer A\nA handles the empty page; B crashes on it.", **at(30))
    assert again.message.endswith("Resubmitted for review.")
    assert states(storage, pair_id) == [("alice", "returned", "revote"), ("alice", "pending", None)]
    with storage.transaction() as session:
        current = session.scalars(select(Judgment).where(Judgment.superseded_at.is_(None))).one()
        assert judging.resubmitted(session, current) == ["rev"]
    # The outcome says so, for the worker to ask the reviewer again.
    assert again.resubmitted == Resubmitted(current.id, "alice", 1, ("rev",))
    deliver(storage, pair_id, "/approve", "rev", **REVIEWER, **at(40))
    assert states(storage, pair_id)[-1] == ("alice", "approved", None)

    with storage.transaction() as session:
        rows = session.scalars(select(Judgment).order_by(Judgment.id)).all()
        found = review_history.histories(session, rows)
    steps = [(step["step"], step.get("reviewer"), step.get("reason")) for step in found[rows[-1].id]]
    assert steps == [
        ("submitted", None, None),
        ("returned", "rev", "Say why A handles the empty page."),
        ("resubmitted", None, None),
        ("approved", "rev", ""),
    ]
    assert [step["step"] for step in found[rows[0].id]] == ["submitted", "returned"]


def test_an_edit_of_a_returned_vote_resubmits_it(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer B\nok", comment_id=70, **at(10))
    deliver(storage, pair_id, "/reject @alice No rationale.", "rev", **REVIEWER, **at(20))
    [edited] = deliver(
        storage,
        pair_id,
        "/prefer B\nB keeps the old behaviour.",
        comment_id=70,
        edited_at=T0 + timedelta(minutes=30),
        **at(10),
    )
    assert edited.message.endswith("Resubmitted for review.") and edited.resubmitted.reviewers == ("rev",)
    assert states(storage, pair_id) == [("alice", "returned", "edited"), ("alice", "pending", None)]


def test_a_vote_needs_the_configured_approvals_from_distinct_reviewers(storage):
    config = RepoConfig(review={"approvals": 2})
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A", **at(10))
    [first] = deliver(storage, pair_id, "/approve @alice", "rev", rubric=config, **REVIEWER, **at(20))
    assert first.message == "@rev approved @alice's vote in round 1; it needs 2 approvals"
    deliver(storage, pair_id, "/approve @alice", "rev", rubric=config, **REVIEWER, **at(21))
    assert states(storage, pair_id) == [("alice", "pending", None)], "one reviewer counts once"
    deliver(storage, pair_id, "/approve @alice", "rev2", rubric=config, **REVIEWER, **at(22))
    assert states(storage, pair_id) == [("alice", "approved", None)]


def test_a_reviewer_who_rated_the_task_may_review_it_only_if_the_repository_allows(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A", **at(10))
    deliver(storage, pair_id, "/rate B correctness=2", "rev", **at(11))
    assert errors(deliver(storage, pair_id, "/approve @alice", "rev", **REVIEWER, **at(20))) == [
        "`/approve @alice`: you rated this task too, so its votes go to other reviewers "
        "(`review.reviewers_may_rate` is off in this repository)"
    ]
    allowed = RepoConfig(review={"reviewers_may_rate": True})
    deliver(storage, pair_id, "/approve @alice", "rev", rubric=allowed, **REVIEWER, **at(21))
    assert states(storage, pair_id) == [("alice", "approved", None)]
    # One's own vote stays refused, whatever the repository says.
    deliver(storage, pair_id, "/prefer B", "rev", rubric=allowed, **at(30))
    assert errors(deliver(storage, pair_id, "/approve @rev", "rev", rubric=allowed, **REVIEWER, **at(31))) == [
        "`/approve @rev`: you cannot review your own vote"
    ]


def test_a_reviewer_who_approved_first_cannot_vote_or_score_on_the_task_afterwards(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A", **at(10))
    deliver(storage, pair_id, "/approve @alice", "rev", **REVIEWER, **at(20))
    why = (
        "you reviewed votes on this task, so you cannot vote on it or score it too "
        "(`review.reviewers_may_rate` is off in this repository)"
    )
    assert errors(deliver(storage, pair_id, "/prefer B", "rev", **at(30))) == [f"`/prefer B`: {why}"]
    assert errors(deliver(storage, pair_id, "/rate A correctness=1", "rev", **at(31))) == [
        f"`/rate A correctness=1`: {why}"
    ]
    assert states(storage, pair_id) == [("alice", "approved", None)]
    allowed = RepoConfig(review={"reviewers_may_rate": True})
    deliver(storage, pair_id, "/prefer B", "rev", rubric=allowed, **at(40))
    assert [login for login, _state, _reason in states(storage, pair_id)] == ["alice", "rev"]


def test_bad_rejections_get_a_reply_that_says_why(storage):
    pair_id = new_pair(storage)
    deliver(storage, pair_id, "/prefer A", **at(10))
    assert errors(deliver(storage, pair_id, "/reject @alice", "rev", **REVIEWER, **at(20))) == [
        "`/reject @alice`: say why, e.g. `/reject @rater <reason>`; the reason is shown to the rater"
    ]
    assert errors(deliver(storage, pair_id, "/reject @bob not convincing", "rev", **REVIEWER, **at(21))) == [
        "`/reject @bob not convincing`: `@bob` has no vote in round 1"
    ]
    assert states(storage, pair_id) == [("alice", "pending", None)]


def test_the_review_queue_lists_what_waits_and_since_when_for_one_team(storage):
    pair_id = new_pair(storage)
    other = new_pair(storage)
    with storage.transaction() as session:
        session.get(Pair, other).task.team = "other-team"
    deliver(storage, pair_id, "/prefer A", **at(10))
    deliver(storage, pair_id, "/prefer B", "bob", **at(12))
    deliver(storage, other, "/prefer A", **at(11))
    deliver(storage, pair_id, "/reject @bob Which test fails?", "rev", **REVIEWER, **at(30))
    now = T0 + timedelta(hours=2)
    with storage.transaction() as session:
        waiting = review_queue.review_queue(session, "waiting", team="default", now=now)
        returned = review_queue.review_queue(session, "returned", team="default", now=now)
        everyone = review_queue.review_queue(session, "waiting", now=now)
    assert [(item["rater"], item["since"], item["waiting_seconds"]) for item in waiting] == [
        ("alice", (T0 + timedelta(minutes=10)).isoformat(), 110 * 60.0)
    ]
    assert [(item["rater"], item["returned_by"], item["reason"]) for item in returned] == [
        ("bob", "rev", "Which test fails?")
    ]
    assert [item["task_id"] for item in everyone] != [item["task_id"] for item in waiting]
    deliver(storage, pair_id, "/prefer B\nthe pager test", "bob", **at(40))
    with storage.transaction() as session:
        waiting = review_queue.review_queue(session, "waiting", team="default", now=now)
    assert [(item["rater"], item["resubmitted"]) for item in waiting] == [("alice", False), ("bob", True)]
