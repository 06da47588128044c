"""CI results per side (tandem.domain.ci) on SQLite and PostgreSQL: states from check runs, suites and
statuses, the latest report of each check kept whatever order they arrive in, a side's summary,
and the payloads checked before any handler runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tandem.domain import ci
from tandem.domain.ci import CheckKind, CiState
from tandem.domain.webhook_payloads import parse
from tandem.infra.errors import Unprocessable
from tandem.infra.models import CiCheck, Pair
from tests.support.judging import HEAD_A, HEAD_B, T0, new_pair


@pytest.mark.parametrize(
    ("status", "conclusion", "state"),
    [
        ("queued", None, CiState.PENDING),
        ("in_progress", None, CiState.PENDING),
        ("completed", "success", CiState.SUCCESS),
        ("completed", "failure", CiState.FAILURE),
        ("completed", "timed_out", CiState.FAILURE),
        ("completed", "cancelled", CiState.FAILURE),
        ("completed", "neutral", CiState.NEUTRAL),
        ("completed", "skipped", CiState.NEUTRAL),
        ("completed", "error", CiState.FAILURE),  # a commit status
        ("pending", "pending", CiState.PENDING),
    ],
)
def test_a_checks_state_from_its_status_and_conclusion(status, conclusion, state):
    assert ci.state_of(status, conclusion) == state


def report(
    storage,
    sha: str,
    name: str,
    state: CiState,
    minutes: int,
    kind=CheckKind.CHECK_RUN,
    url=None,
    source="app:7",
    order=None,
):
    """A report recorded `minutes` after T0; by default the later one is also GitHub's later report."""
    with storage.transaction() as session:
        return ci.record(
            session,
            "evals/mirror-1",
            sha,
            kind=kind,
            source=source,
            name=name,
            order=order or (minutes, 0),
            state=state,
            url=url,
            reported_at=T0 + timedelta(minutes=minutes),
            delivery_id=f"d-{name}-{minutes}",
        )


def states(storage, pair_id: int) -> tuple:
    with storage.transaction() as session:
        task_id = session.get(Pair, pair_id).task_id
        return ci.heads_state(session, task_id, HEAD_A, HEAD_B)


def test_each_check_keeps_its_latest_report_whatever_order_they_arrive_in(storage):
    pair_id = new_pair(storage)
    assert states(storage, pair_id) == (None, None)
    with storage.transaction() as session:
        task_id = session.get(Pair, pair_id).task_id
    assert report(storage, HEAD_A, "tests", CiState.SUCCESS, 10, order=(10, 2)) == {task_id}
    report(storage, HEAD_A, "tests", CiState.PENDING, 5)  # an earlier run, delivered late
    report(storage, HEAD_A, "tests", CiState.PENDING, 11, order=(10, 1))  # the run's start, delivered late
    report(storage, HEAD_B, "tests", CiState.PENDING, 5)
    assert states(storage, pair_id) == (CiState.SUCCESS, CiState.PENDING)
    report(storage, HEAD_B, "tests", CiState.FAILURE, 12, url="https://ci.example/2")
    report(storage, HEAD_B, "lint", CiState.SUCCESS, 13, kind=CheckKind.STATUS)
    report(storage, HEAD_B, "ci", CiState.FAILURE, 13, kind=CheckKind.CHECK_SUITE)
    assert states(storage, pair_id) == (CiState.SUCCESS, CiState.FAILURE)
    assert report(storage, "f" * 40, "tests", CiState.FAILURE, 14) == set(), "not a head of any side"


def test_two_apps_checks_of_one_name_are_two_checks_and_neither_hides_the_others_failure(storage):
    pair_id = new_pair(storage)
    report(storage, HEAD_A, "build", CiState.FAILURE, 5, source="app:7", order=(100, 2))
    report(storage, HEAD_B, "build", CiState.SUCCESS, 5, source="app:7", order=(101, 2))
    # Another app posts a passing "build" later, with a higher id (and whatever times it likes).
    report(storage, HEAD_A, "build", CiState.SUCCESS, 9, source="app:99", order=(500, 2))
    report(storage, HEAD_A, "build", CiState.SUCCESS, 9, kind=CheckKind.STATUS, source="user:99", order=(501, 0))
    assert states(storage, pair_id) == (CiState.FAILURE, CiState.SUCCESS)
    with storage.transaction() as session:
        kept = session.scalars(select(CiCheck).where(CiCheck.head_sha == HEAD_A).order_by(CiCheck.id)).all()
        assert [(check.source, check.state) for check in kept] == [
            ("app:7", CiState.FAILURE),
            ("app:99", CiState.SUCCESS),
            ("user:99", CiState.SUCCESS),
        ]


def test_a_re_run_suite_shows_as_running_until_it_reports_again(storage):
    """GitHub tells only the suite's own app that a suite was re-run; Tandem sees its new check runs."""
    pair_id = new_pair(storage)
    report(storage, HEAD_A, "tests", CiState.FAILURE, 10, order=(100, 2))
    report(storage, HEAD_A, "ci", CiState.FAILURE, 11, kind=CheckKind.CHECK_SUITE, order=(50, 2))
    assert states(storage, pair_id)[0] == CiState.FAILURE
    report(storage, HEAD_A, "tests", CiState.PENDING, 12, order=(101, 0))  # the re-run's new check run
    assert states(storage, pair_id)[0] == CiState.PENDING
    report(storage, HEAD_A, "tests", CiState.SUCCESS, 13, order=(101, 2))
    report(storage, HEAD_A, "ci", CiState.SUCCESS, 14, kind=CheckKind.CHECK_SUITE, order=(50, 2))
    assert states(storage, pair_id)[0] == CiState.SUCCESS
    # Another app's check runs say nothing of this suite.
    report(storage, HEAD_A, "ci", CiState.FAILURE, 15, kind=CheckKind.CHECK_SUITE, order=(50, 2))
    report(storage, HEAD_A, "lint", CiState.PENDING, 16, source="app:99", order=(900, 0))
    assert states(storage, pair_id)[0] == CiState.FAILURE


def test_a_sides_summary_names_its_failing_checks_and_a_round_finishes_when_nothing_runs(storage):
    checks = [
        CiCheck(kind=CheckKind.CHECK_RUN, name="tests", state=CiState.FAILURE, url="u1", reported_at=T0),
        CiCheck(kind=CheckKind.CHECK_SUITE, name="ci", state=CiState.FAILURE, url=None, reported_at=T0),
        CiCheck(kind=CheckKind.STATUS, name="build", state=CiState.SUCCESS, url="u2", reported_at=T0),
    ]
    assert ci.summary(checks) == {
        "state": CiState.FAILURE,
        "failing": [{"name": "tests", "url": "u1"}],
        "reported_at": T0,
    }
    neutral = CiCheck(kind=CheckKind.STATUS, name="docs", state=CiState.NEUTRAL, url=None, reported_at=T0)
    assert ci.summary([neutral])["state"] == CiState.NEUTRAL
    assert ci.summary([])["state"] is None
    later = T0 + timedelta(minutes=3)
    running = {
        "A": {"state": CiState.SUCCESS, "reported_at": T0},
        "B": {"state": CiState.PENDING, "reported_at": later},
    }
    assert ci.finished_at(running) is None
    assert ci.finished_at({"A": running["A"]}) is None
    assert ci.finished_at(running | {"B": {"state": CiState.NEUTRAL, "reported_at": later}}) == later


@pytest.mark.parametrize(
    ("event", "body", "problem"),
    [
        ("check_run", '{"check_run": {"head_sha": "abc"}}', "check_run.name: Field required"),
        ("check_suite", '{"check_suite": {"status": "completed"}}', "check_suite.head_sha: Field required"),
        ("status", '{"sha": "abc", "state": "success"}', "context: Field required"),
    ],
)
def test_a_malformed_ci_payload_is_refused_with_the_reason(event, body, problem):
    with pytest.raises(Unprocessable) as refused:
        parse(event, body)
    assert problem in str(refused.value)
