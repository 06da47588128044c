"""The statistics read from SQLite and PostgreSQL: current, approved judgments only, sides mapped
to the right models, scores and reviews with them, and every filter."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from tandem.domain.statistics import columns
from tandem.domain.statistics.columns import integer
from tandem.domain.statistics.queries import Filters, load
from tandem.domain.statistics.report import statistics
from tandem.infra.models import Judgment, JudgmentReview, Rating, Task
from tests.stats_synthetic import AXES, Plan, draw, has_old_version, round_of, voted_at
from tests.support.statistics import store, truth

PLAN = Plan(models=5, pairs=48, raters=5, raters_per_pair=3, tie_share=0.2, seed=4)


def loaded(storage, **filters) -> list[tuple]:
    with storage.transaction() as session:
        j = load(session, Filters(**filters)).judgments
    verdicts = ("A", "B", "tie", "neither")
    return sorted(
        (*j.units[u], j.raters[r], j.models[a], j.models[b], verdicts[v])
        for u, r, a, b, v in zip(j.unit, j.rater, j.model_a, j.model_b, j.verdict, strict=True)
    )


def test_only_current_approved_judgments_count_with_the_models_of_their_sides(storage):
    store(storage, PLAN)
    expected = truth(PLAN)
    assert loaded(storage) == expected
    # Superseded versions never count; pending ones do when asked.
    assert loaded(storage, include_unapproved=True) == truth(PLAN, pending=True)
    assert len(truth(PLAN, pending=True)) > len(expected) > 0


@pytest.mark.parametrize(
    "filters, keep",
    [
        ({"repo": "evals/mirror-1"}, lambda p: p % 2 == 1),
        ({"round": 2}, lambda p: round_of(p) == 2),
        ({"metadata": {"suite": "s2"}}, lambda p: p % 3 == 2),
        ({"since": voted_at(10), "until": voted_at(30)}, lambda p: 10 <= p < 30),
    ],
)
def test_filters(storage, filters, keep):
    store(storage, PLAN)
    assert loaded(storage, **filters) == truth(PLAN, keep=keep) != []


def test_a_model_subset_keeps_the_pairs_of_those_models_only(storage):
    store(storage, PLAN)
    subset = {"model-00", "model-02", "model-03"}
    rows = loaded(storage, models=frozenset(subset))
    assert rows == [row for row in truth(PLAN) if {row[3], row[4]} <= subset] != []


def test_the_report_counts_scores_and_reviews_with_their_judgments(storage):
    store(storage, PLAN)
    with storage.transaction() as session:
        # A withdrawn review does not count.
        session.execute(update(JudgmentReview).where(JudgmentReview.judgment_id == 1).values(withdrawn_at=voted_at(0)))
        report = statistics(session, Filters(), bootstrap=50, seed=1)
    judged = truth(PLAN)
    assert report["judgments"] == len(judged)
    assert set(report["axes"]) == set(AXES)
    # Each approved judgment scored both sides on each axis, so one battle per judgment.
    correctness = report["axes"]["correctness"]["ranking"]
    assert sum(m["battles"] for m in correctness["models"]) == 2 * len(judged)
    assert report["axes"]["correctness"]["scores"] == 2 * len(judged)
    reviews = report["reviewers"]
    assert [r["reviewer"] for r in reviews] == ["reviewer-0", "reviewer-1"]
    # Every approved vote was approved an hour after it (one review withdrawn); every replaced
    # version was rejected 10 s after it.
    replaced = sum(has_old_version(n) for n in range(len(draw(PLAN).pair)))
    assert sum(r["approved"] for r in reviews) == len(judged) - 1
    assert sum(r["rejected"] for r in reviews) == replaced > 0
    assert [r["median_turnaround_seconds"] for r in reviews] == [3600.0, 3600.0]
    assert all(type(r["median_turnaround_seconds"]) is float for r in reviews)
    raters = {r["rater"]: r for r in report["raters"]}
    assert sum(r["judgments"] for r in raters.values()) == len(judged)
    assert all(r["median_seconds_on_task"] > 0 and r["gold_accuracy"] is None for r in raters.values())
    assert sum(r["reviewed"] for r in raters.values()) == len(judged) - 1 + replaced
    assert all(r["approval_rate"] + r["rejection_rate"] == pytest.approx(1) for r in raters.values())


def test_scores_of_an_unapproved_vote_count_only_when_asked(storage):
    store(storage, PLAN)
    with storage.transaction() as session:
        approved = load(session, Filters()).ratings
        everything = load(session, Filters(include_unapproved=True)).ratings
    assert len(everything.score) == 4 * len(truth(PLAN, pending=True))
    assert len(approved.score) == 4 * len(truth(PLAN))


def test_scores_without_a_vote_count_only_with_unapproved_votes_named_by_their_latest_score(storage):
    store(storage, PLAN)
    score = {"task_id": 1, "round_id": 1, "rater_id": 999, "side": "A", "axis": AXES[0], "score": 5}
    with storage.transaction() as session:
        for n, login in enumerate(("scorer-old", "scorer")):
            session.add(Rating(**score, rater_login=login, comment_id=10**6 + n, delivery_id=f"s{n}"))
        session.flush()
        session.execute(update(Rating).where(Rating.rater_login == "scorer-old").values(superseded_at=voted_at(0)))
        everything = load(session, Filters(include_unapproved=True)).ratings
        approved = load(session, Filters()).ratings
    assert "scorer" in everything.raters and "scorer-old" not in everything.raters
    assert len(everything.score) == 4 * len(truth(PLAN, pending=True)) + 1
    assert "scorer" not in approved.raters and len(approved.score) == 4 * len(truth(PLAN))


def test_a_renamed_rater_is_one_rater_named_by_the_latest_login_with_all_their_reviews(storage):
    store(storage, PLAN)
    with storage.transaction() as session:
        # Their first vote was cast under an earlier login.
        first = select(Judgment.id).where(Judgment.rater_login == "rater-00").order_by(Judgment.id).limit(1)
        session.execute(update(Judgment).where(Judgment.id == first.scalar_subquery()).values(rater_login="old"))
        report = statistics(session, Filters(), bootstrap=0)
    raters = {r["rater"]: r for r in report["raters"]}
    assert "old" not in raters
    judged = [row for row in truth(PLAN) if row[2] == "rater-00"]
    drawn = draw(PLAN)
    replaced = sum(has_old_version(n) for n in range(len(drawn.pair)) if drawn.rater[n] == 0)
    assert raters["rater-00"]["judgments"] == len(judged) > 0
    # Each approved vote's approval and each replaced version's rejection, whatever the login.
    assert raters["rater-00"]["reviewed"] == len(judged) + replaced


@pytest.mark.parametrize(
    "filters, keep",
    [
        ({"models": frozenset({"model-00", "model-01", "model-02"})}, None),
        ({"repo": "evals/mirror-0"}, lambda p: p % 2 == 0),
    ],
)
def test_reviews_follow_the_filters(storage, filters, keep):
    store(storage, PLAN)
    with storage.transaction() as session:
        reviews = load(session, Filters(**filters)).reviews
    if keep is None:
        expected = [row for row in truth(PLAN) if {row[3], row[4]} <= filters["models"]]
    else:
        expected = truth(PLAN, keep=keep)
    assert int(reviews.count[reviews.approved].sum()) == len(expected) > 0


def test_conditions_on_the_task_scope_everything(storage):
    # How the HTTP API limits a token to its team's tasks: a condition on Task.
    store(storage, PLAN)
    scoped = Filters(tasks=(Task.id <= 12,))
    with storage.transaction() as session:
        records = load(session, scoped)
    assert {task for task, _ in records.judgments.units} <= set(range(1, 13))
    assert len(records.judgments.unit) == len(truth(PLAN, keep=lambda p: p < 12)) > 0
    assert len(records.ratings.score) == 4 * len(truth(PLAN, keep=lambda p: p < 12))
    assert int(records.reviews.count[records.reviews.approved].sum()) == len(truth(PLAN, keep=lambda p: p < 12))


def test_a_selection_of_nothing_gives_empty_records(storage):
    store(storage, PLAN)
    with storage.transaction() as session:
        records = load(session, Filters(repo="evals/no-such-mirror"))
    assert len(records.judgments) == 0 and len(records.ratings.score) == 0 and records.judgments.units == []


def test_the_reads_at_once_see_the_database_as_it_was_when_they_began(storage):
    """On PostgreSQL the big reads run at once on connections of their own, in the snapshot of
    the session's transaction: what commits meanwhile is in none of them, never in some only."""
    if storage.engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads in order, in the session")
    store(storage, PLAN)
    current = select(integer(Judgment.id)).where(Judgment.superseded_at.is_(None))
    with storage.transaction() as session, columns.Reader(session) as reader:
        before = session.scalar(select(func.count()).select_from(current.subquery()))
        with storage.transaction() as other:
            other.execute(update(Judgment).values(superseded_at=voted_at(0)))
        # The session itself (read committed) sees the change; the reads do not.
        assert session.scalar(select(func.count()).select_from(current.subquery())) == 0
        (ids,) = reader.fetch(current, [columns.INT]).result()
    assert len(ids) == before > 0


def test_a_transaction_that_has_written_reads_its_own_writes(storage):
    store(storage, PLAN)
    with storage.transaction() as session:
        session.execute(update(Judgment).values(superseded_at=voted_at(0)))
        assert len(load(session, Filters(include_unapproved=True)).judgments) == 0
