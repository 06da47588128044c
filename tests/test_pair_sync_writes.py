"""A pair's labels and check runs show every vote of a window in one update (tandem.infra.outbox), and
never lose the final state: counted on the emulator's request log, not timed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from tandem.infra import job_names, outbox, queue, redis_keys
from tandem.infra.models import OutboxEntry, Task
from tests import github_views as views
from tests.conftest import run_jobs, settle

REPO = "evals-org/mlflow"
WRITES = {"POST", "PATCH", "PUT", "DELETE"}


@pytest.fixture
def long_window(services):
    # Far longer than the test: every vote falls in one window, whatever the clock says.
    services.settings.pair_sync_window_seconds = 10**6


def writes(github) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in github.requests
        if r.method in WRITES and r.installation_id == github.installation.id
    ]


def shown(github, pair) -> tuple[set, set]:
    pulls = {p["number"]: p for p in views.pulls(github, REPO, state="all")}
    titles = {
        run["output"]["title"]
        for letter in ("A", "B")
        for run in views.check_runs(github, REPO, pulls[pair[letter]]["head_sha"])
    }
    labels = {frozenset(pulls[pair[letter]]["labels"]) for letter in ("A", "B")}
    return titles, labels


def vote_one_by_one(github, services, pair, votes) -> None:
    """Each vote is delivered and processed (and acknowledged) before the next is written."""
    for login, body in votes:
        github.as_user(login).comment(REPO, pair["A"], body)
        github.drain()
        run_jobs(services)


def test_a_burst_of_votes_costs_one_reaction_each_and_one_update_of_the_pair(github, services, pair, long_window):
    github.reset_requests()
    vote_one_by_one(
        github,
        services,
        pair,
        [
            ("rater-one", "/prefer A"),
            ("rater-two", "/prefer B"),
            ("rater-three", "/prefer tie"),
            ("rater-two", "/prefer A"),
        ],
    )
    assert shown(github, pair) == ({"Awaiting judgment"}, {frozenset({"tandem", "tandem:pending"})})

    settle(github, services)  # the window ends

    assert shown(github, pair) == ({"3 of 2 judgments"}, {frozenset({"tandem", "tandem:judged"})})
    made = writes(github)
    assert sum("/reactions" in w for w in made) == 4
    assert len(made) == 4 + 2 + 2, made  # a reaction per vote; both PRs' labels and check runs once


def test_a_sync_job_lost_before_it_ran_is_queued_again_by_the_sweep(github, services, pair, long_window):
    vote_one_by_one(github, services, pair, [("rater-one", "/prefer A"), ("rater-two", "/prefer B slightly")])
    registry = ScheduledJobRegistry(queue=services.queue(queue.PAIRS))
    [lost] = registry.get_job_ids()
    registry.remove(lost, delete_job=True)  # Redis lost it, or a worker died holding it
    settle(github, services)
    assert shown(github, pair)[0] == {"Awaiting judgment"}

    assert outbox.sweep(services, older_than=timedelta(0)) == 1
    settle(github, services)

    assert shown(github, pair) == ({"2 of 2 judgments"}, {frozenset({"tandem", "tandem:judged"})})
    with services.storage.transaction() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEntry)) == 0, "the sync said it is done"
    assert outbox.sweep(services, older_than=timedelta(0)) == 0


def test_a_sync_held_back_by_the_rate_limit_is_not_scheduled_again_by_every_sweep(github, services, pair):
    vote_one_by_one(github, services, pair, [("rater-one", "/prefer A")])
    registry = ScheduledJobRegistry(queue=services.queue(queue.PAIRS))
    [first] = registry.get_job_ids()
    registry.remove(first, delete_job=True)
    with services.storage.transaction() as session:
        pair_id = session.get_one(Task, pair["task_id"]).pair.id
    key = redis_keys.pair_sync(pair_id)
    # What the job does when GitHub's rate limit holds it back: once more, for when the wait is over.
    kwargs = job_names.payload(job_names.SYNC_PAIR, pair_id=pair_id)
    assert outbox.coalesce(services, queue.PAIRS, job_names.SYNC_PAIR, [], key, kwargs=kwargs, not_before=3600)

    # The vote's entry still waits for that job; the sweeps leave it to it.
    for _ in range(3):
        assert outbox.sweep(services, older_than=timedelta(0)) == 0
    assert len(registry.get_job_ids()) == 1

    # Once that job has started, a new entry gets a job of its own.
    [held] = registry.get_job_ids()
    Job.fetch(held, connection=services.redis).set_status(JobStatus.STARTED)
    assert outbox.sweep(services, older_than=timedelta(0)) == 1
