"""One vocabulary (tandem.domain.vocabulary): the database refuses any other value, a database migrated
with rows keeps them, and a task file and a repository's config agree on what a rubric axis is."""

from __future__ import annotations

import pytest
from sqlalchemy import CheckConstraint, inspect, select, text
from sqlalchemy.exc import IntegrityError

from tandem.domain import repo_config
from tandem.domain.repo_config import RepoConfigError, Rubric
from tandem.domain.task_spec import InvalidTask, parse_task
from tandem.domain.vocabulary import (
    ClosedReason,
    ReviewDecision,
    ReviewState,
    RoundStatus,
    Strength,
    SupersededReason,
    TaskStatus,
    Verdict,
)
from tandem.infra import migrate
from tandem.infra.db import Base, Storage, utcnow
from tandem.infra.models import Judgment, JudgmentReview, OutboxEntry, Pair, Rating, Round, Task

CONSTRAINED = [
    ("tasks", "status"),
    ("rounds", "status"),
    ("rounds", "closed_reason"),
    ("judgments", "verdict"),
    ("judgments", "strength"),
    ("judgments", "review_state"),
    ("judgments", "superseded_reason"),
    ("ratings", "superseded_reason"),
    ("judgment_reviews", "decision"),
]
VOTES = [  # (verdict, strength, review state, superseded reason): every value of each
    (Verdict.A, Strength.SLIGHTLY, ReviewState.PENDING, None),
    (Verdict.B, Strength.CLEARLY, ReviewState.APPROVED, SupersededReason.REVOTE),
    (Verdict.A, Strength.MUCH, ReviewState.RETURNED, SupersededReason.EDITED),
    (Verdict.TIE, None, ReviewState.PENDING, SupersededReason.UNDO),
    (Verdict.NEITHER, None, ReviewState.APPROVED, SupersededReason.DELETED),
]


def record_every_value(storage: Storage) -> None:
    """Rows holding every value of the vocabulary, written through the models."""
    now = utcnow()
    with storage.transaction() as session:
        tasks = [Task(repo_full_name="evals-org/mlflow", base="main", prompt="Fix it.", status=s) for s in TaskStatus]
        session.add_all(tasks)
        session.flush()
        pair = Pair(task_id=tasks[0].id, a_is_first_output=True)
        rounds = [Round(task_id=tasks[0].id, number=n, prompt="p", status=s) for n, s in enumerate(RoundStatus, 1)]
        rounds += [
            Round(task_id=tasks[1].id, number=n, prompt="p", status=RoundStatus.CLOSED, closed_reason=reason)
            for n, reason in enumerate(ClosedReason, 1)
        ]
        session.add_all([pair, *rounds])
        session.flush()
        judgments = [
            Judgment(
                task_id=tasks[0].id,
                pair_id=pair.id,
                round_id=rounds[0].id,
                rater_id=i,
                rater_login=f"r{i}",
                verdict=verdict,
                strength=strength,
                source="comment",
                comment_id=i,
                on_side="A",
                delivery_id="d",
                voted_at=now,
                review_state=state,
                superseded_reason=reason,
            )
            for i, (verdict, strength, state, reason) in enumerate(VOTES)
        ]
        session.add_all(judgments)
        session.flush()
        session.add_all(
            Rating(
                task_id=tasks[0].id,
                round_id=rounds[0].id,
                judgment_id=judgment.id,
                rater_id=i,
                rater_login="r",
                side="A",
                axis="correctness",
                score=3,
                comment_id=i,
                delivery_id="d",
                superseded_reason=reason,
            )
            for i, (judgment, (*_, reason)) in enumerate(zip(judgments, VOTES, strict=True))
        )
        session.add_all(
            JudgmentReview(
                judgment_id=judgments[0].id,
                reviewer_id=9,
                reviewer_login="rev",
                decision=decision,
                comment_id=90 + i,
                delivery_id="d",
            )
            for i, decision in enumerate(ReviewDecision)
        )


def test_a_database_with_rows_of_every_value_migrates_and_then_refuses_others(database_url):
    storage = Storage.from_url(database_url[0])
    migrate.upgrade(storage.engine, "0009_ci_and_returns")
    record_every_value(storage)
    with storage.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO follow_ups (job_id, queue, func, args, created_at) "
                "VALUES ('follow-up-1', 'pairs', 'workers.pairs.sync_pair', '[7]', :now)"
            ),
            {"now": utcnow()},
        )

    migrate.upgrade(storage.engine)

    with storage.transaction() as session:
        assert session.scalars(select(Task.status).order_by(Task.id)).all() == list(TaskStatus)
        statuses = session.execute(select(Round.status, Round.closed_reason).order_by(Round.id)).all()
        assert statuses == [(s, None) for s in RoundStatus] + [(RoundStatus.CLOSED, r) for r in ClosedReason]
        columns = (Judgment.verdict, Judgment.strength, Judgment.review_state, Judgment.superseded_reason)
        assert [tuple(row) for row in session.execute(select(*columns).order_by(Judgment.id))] == VOTES
        reasons = session.scalars(select(Rating.superseded_reason).order_by(Rating.id)).all()
        assert reasons == [reason for *_, reason in VOTES]
        assert session.scalars(select(JudgmentReview.decision)).all() == list(ReviewDecision)
        assert [(e.id, e.job_id, e.args) for e in session.scalars(select(OutboxEntry))] == [(1, "follow-up-1", [7])]
        session.add(OutboxEntry(queue="pairs", func="workers.pairs.sync_pair", args=[8]))
        session.flush()  # the id sequence came along with the table (PostgreSQL)
        assert session.scalars(select(OutboxEntry.id).order_by(OutboxEntry.id)).all() == [1, 2]

    checks = inspect(storage.engine)
    for table in {table for table, _ in CONSTRAINED}:
        migrated = {check["name"] for check in checks.get_check_constraints(table)}
        modelled = {c.name for c in Base.metadata.tables[table].constraints if isinstance(c, CheckConstraint)}
        assert migrated == modelled, table
    for table, column in CONSTRAINED:
        with pytest.raises(IntegrityError), storage.engine.begin() as connection:
            connection.execute(text(f"UPDATE {table} SET {column} = 'bogus'"))
    storage.engine.dispose()


def test_the_database_refuses_a_value_outside_the_vocabulary(storage):
    with (
        pytest.raises(IntegrityError, match=r"ck_tasks_status|CHECK constraint failed"),
        storage.transaction() as session,
    ):
        session.add(Task(repo_full_name="evals-org/mlflow", base="main", prompt="Fix it.", status="done"))
    with storage.transaction() as session:
        assert session.scalars(select(Task)).all() == []


TASK = {"repo": "evals-org/mlflow", "base": "main", "prompt": "Fix it.", "models": ["x", "y"]}


@pytest.mark.parametrize(
    ("axes", "problem"),
    [
        (["code-quality", "tests_2"], None),
        (["code quality"], "axis 'code quality' must be one lower-case word"),
        (["Tests"], "axis 'Tests' must be one lower-case word"),
        (["tests", "tests"], "axes repeat"),
    ],
)
def test_a_task_file_and_a_repository_config_agree_on_rubric_axes(axes, problem):
    outcomes = []
    for check, refusal in (
        (lambda: parse_task(TASK | {"rubric": axes}), InvalidTask),
        (lambda: repo_config.validate({"rubric": {"axes": axes}}, "tandem.yml"), RepoConfigError),
    ):
        try:
            check()
            outcomes.append(None)
        except refusal as error:
            outcomes.append(str(error).split(": ", 2)[-1])
    assert outcomes[0] == outcomes[1], "the same rule, in the same words"
    if problem is None:
        assert outcomes[0] is None and Rubric(tuple(axes)).axes == tuple(axes)
    else:
        assert outcomes[0].startswith(problem)


def test_a_migration_that_fails_leaves_the_database_as_it_was(database_url):
    """SQLite's driver commits schema changes as they come unless told otherwise: a 0010 that failed
    on a value outside the vocabulary had renamed the outbox already, and could not be run again."""
    storage = Storage.from_url(database_url[0])
    migrate.upgrade(storage.engine, "0009_ci_and_returns")
    with storage.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO tasks (repo_full_name, base, prompt, status, raters, leaks, metadata, team, "
                "created_at, updated_at) "
                "VALUES ('evals-org/mlflow', 'main', 'Fix it.', 'bogus', '[]', '[]', '{}', 'default', :now, :now)"
            ),
            {"now": utcnow()},
        )
    before = sorted(inspect(storage.engine).get_table_names())
    with pytest.raises(IntegrityError):
        migrate.upgrade(storage.engine)
    storage.engine.dispose()
    assert sorted(inspect(storage.engine).get_table_names()) == before
    assert migrate.current_revision(storage.engine) == "0009_ci_and_returns"
    with storage.engine.begin() as connection:
        connection.execute(text("UPDATE tasks SET status = 'failed'"))
    migrate.upgrade(storage.engine)  # once the value is mended, the same migration runs through
    assert migrate.current_revision(storage.engine) == migrate.head_revision()
    storage.engine.dispose()
