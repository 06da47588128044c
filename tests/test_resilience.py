"""GitHub failing and saying "wait" (the emulator's injected faults): short waits are slept in
place, long ones reschedule the job without spending a retry, 5xx answers are retried with
back-off, and whatever happens, a pair is opened once and a judgment recorded once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from githubkit import GitHub
from githubkit.exception import RequestFailed
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from tandem.infra import queue
from tandem.infra.errors import RateLimited
from tandem.infra.github import RetryPolicy
from tandem.infra.models import Judgment, Task
from tests import github_views as views
from tests.conftest import settle, submit_task
from tests.servers import LiveServer
from tests.support.http_proxy import LoopbackProxy
from tests.support.scheduled import run_scheduled, scheduled_jobs, time_passes

REPO = "evals-org/mlflow"
LONG = 600  # seconds: far more than max_inline_wait_seconds (3 in tests)


def task_status(services, task_id: int) -> str:
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        return task.status if task.status != "failed" else f"failed: {task.failure_reason}"


def pulls(github) -> list[dict]:
    return views.pulls(github, REPO, state="all")


def check_runs_per_head(github) -> dict[str, int]:
    return {p["head_sha"]: len(views.check_runs(github, REPO, p["head_sha"])) for p in pulls(github)}


def failed_jobs(services) -> list[str]:
    return [job_id for name in queue.ALL for job_id in services.queue(name).failed_job_registry.get_job_ids()]


def judgments(services) -> list[tuple[str, str]]:
    with services.storage.transaction() as session:
        return [(j.rater_login, j.verdict) for j in session.scalars(select(Judgment))]


# --- opening a pair -----------------------------------------------------------------------------


def test_a_pair_opens_once_through_5xx_answers_and_short_rate_limits(github, services, blinding):
    faults = github.faults
    faults.fail(status=502, times=1, method="POST", path_contains="/graphql")  # a query: retried in place
    faults.fail(status=503, times=1, method="POST", path_contains="/access_tokens")  # safe to repeat
    faults.secondary_rate_limit(times=1, retry_after=1, method="POST", path_contains="/pulls")  # slept in place
    faults.too_many_requests(times=1, retry_after=1, method="PATCH")
    faults.primary_rate_limit(times=1, reset_in=1, method="POST", path_contains="/graphql")
    faults.fail(status=502, times=2, method="POST", path_contains="/check-runs")  # the job's retries
    task_id = submit_task(services, blinding)
    settle(github, services)

    assert faults.pending == 0, "every injected fault was met"
    assert task_status(services, task_id) == "open"
    assert len(pulls(github)) == 2
    assert list(check_runs_per_head(github).values()) == [1, 1]
    assert failed_jobs(services) == []
    assert scheduled_jobs(services, queue.PAIRS) == []
    statuses = [r.status for r in github.requests]
    assert {502, 503, 403, 429} <= set(statuses)


@pytest.mark.parametrize("kind", ["primary", "secondary", "too_many"])
def test_a_long_rate_limit_reschedules_the_job_for_when_it_is_over_without_spending_a_retry(
    github, services, blinding, kind
):
    inject = {
        "primary": lambda: github.faults.primary_rate_limit(
            times=2, reset_in=LONG, method="POST", path_contains="/pulls"
        ),
        "secondary": lambda: github.faults.secondary_rate_limit(
            times=2, retry_after=LONG, method="POST", path_contains="/pulls"
        ),
        "too_many": lambda: github.faults.too_many_requests(
            times=2, retry_after=LONG, method="POST", path_contains="/pulls"
        ),
    }
    inject[kind]()
    task_id = submit_task(services, blinding)
    before = datetime.now(UTC)
    settle(github, services)

    # GitHub said "wait ten minutes": the job waits, in RQ's scheduled registry, not in a worker.
    [(job, when)] = scheduled_jobs(services, queue.PAIRS)
    assert timedelta(seconds=LONG - 30) <= when - before <= timedelta(seconds=LONG + 30)
    assert job.func_name == "workers.pairs.open_pair" and job.kwargs["task_id"] == task_id
    assert job.retries_left == len(services.settings.job_retry_intervals), "no retry spent on waiting"
    assert task_status(services, task_id) == "opening"
    assert pulls(github) == []
    assert failed_jobs(services) == []

    # The wait is over, and GitHub says "wait" once more: the job waits again, still not failing.
    time_passes(services, queue.PAIRS)
    settle(github, services)
    [(job, _when)] = scheduled_jobs(services, queue.PAIRS)
    assert job.retries_left == len(services.settings.job_retry_intervals)
    assert task_status(services, task_id) == "opening"

    time_passes(services, queue.PAIRS)
    settle(github, services)
    assert task_status(services, task_id) == "open"
    assert len(pulls(github)) == 2
    assert scheduled_jobs(services, queue.PAIRS) == [] and failed_jobs(services) == []


def when_due(services, name: str) -> None:
    """The scheduler's work, in real time: once the scheduled jobs are due, move them to their queue."""
    registry = ScheduledJobRegistry(queue=services.queue(name))
    due = max(registry.get_scheduled_time(job_id) for job_id in registry.get_job_ids())
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
    run_scheduled(services, name)


HELD = 6  # seconds GitHub asks to wait: well over what a job sleeps in place (3 in tests)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # GitHub's matter, not storage's
@pytest.mark.parametrize("limit", ["secondary", "primary"])
def test_a_rate_limit_holds_every_job_of_the_installation_until_it_is_over(github, services, blinding, limit):
    """GitHub limits one task's write: the next task must not write (after the primary limit: not
    send anything) to that installation before the wait is over; both open afterwards."""
    if limit == "secondary":
        github.faults.secondary_rate_limit(times=1, retry_after=HELD, method="POST", path_contains="/pulls")
    else:
        github.faults.primary_rate_limit(times=1, reset_in=HELD, method="POST", path_contains="/pulls")
    task_ids = [submit_task(services, blinding), submit_task(services, blinding, prompt="Another fix.")]
    settle(github, services)
    assert len(scheduled_jobs(services, queue.PAIRS)) == 2, "both jobs wait in the scheduler, not in a worker"
    while scheduled_jobs(services, queue.PAIRS):
        when_due(services, queue.PAIRS)
        settle(github, services)

    assert [task_status(services, task_id) for task_id in task_ids] == ["open", "open"]
    assert len(pulls(github)) == 4
    [refused] = [r for r in github.requests if r.status == 403]
    if limit == "secondary":
        over = refused.at + refused.duration + int(refused.response_headers["retry-after"])
        held = {"POST", "PATCH", "PUT", "DELETE"}
    else:
        over = int(refused.response_headers["x-ratelimit-reset"])
        held = {"GET", "POST", "PATCH", "PUT", "DELETE"}
    sent = [r for r in github.requests if r.installation_id == github.installation.id and r.at > refused.at]
    early = [f"{r.method} {r.path} {over - r.at:.1f} s early" for r in sent if r.method in held and r.at < over]
    assert early == []
    assert any(r.method == "POST" and r.path.endswith("/pulls") for r in sent)


def test_a_create_that_failed_after_taking_effect_is_not_repeated(github, services, blinding):
    """GitHub may create the PR (or check run) and still answer 502. A proxy in front of the
    emulator does that to the first POST of each; the pair must still have exactly two PRs and
    one check run per PR."""
    failed_once: set[str] = set()

    def after_effect(method: str, path: str) -> int | None:
        for kind in ("/pulls", "/check-runs"):
            if method == "POST" and path.endswith(kind) and kind not in failed_once:
                failed_once.add(kind)
                return 502
        return None

    proxy = LoopbackProxy(github.url, replace=after_effect)
    with LiveServer(proxy) as server:
        services.settings.github_api_url = server.url
        task_id = submit_task(services, blinding)
        settle(github, services)
    assert failed_once == {"/pulls", "/check-runs"}
    assert task_status(services, task_id) == "open"
    assert len(pulls(github)) == 2
    assert list(check_runs_per_head(github).values()) == [1, 1]
    with services.storage.transaction() as session:
        pair = session.get(Task, task_id).pair
        recorded = {side.check_run_id for side in pair.sides}
    shown = {run["id"] for head in check_runs_per_head(github) for run in views.check_runs(github, REPO, head)}
    assert recorded == shown


# --- a rater's comment --------------------------------------------------------------------------


def test_a_comment_is_recorded_once_while_github_fails_and_limits(github, services, pair):
    faults = github.faults
    faults.fail(status=502, times=2, method="GET", path_contains="/memberships/")
    faults.fail(status=500, times=1, method="POST", path_contains="/reactions")
    faults.secondary_rate_limit(times=1, retry_after=1, method="POST", path_contains="/reactions")
    faults.too_many_requests(times=1, retry_after=LONG, method="PATCH")  # the pair's labels: rescheduled
    comment = github.as_user("rater-three").comment(REPO, pair["A"], "/prefer A\nCleaner.")
    settle(github, services)

    assert judgments(services) == [("rater-three", "A")]
    [(job, _when)] = scheduled_jobs(services, queue.PAIRS)
    assert job.func_name == "workers.responses.sync_pair"
    time_passes(services, queue.PAIRS)
    settle(github, services)

    assert faults.pending == 0
    assert judgments(services) == [("rater-three", "A")]
    [shown] = [c for c in views.comments(github, REPO, pair["A"]) if c["id"] == comment.id]
    assert shown["reactions"] == [("tandem[bot]", "+1")]
    assert {"tandem", "tandem:judged"} <= set(next(p for p in pulls(github) if p["number"] == pair["A"])["labels"])
    assert failed_jobs(services) == [] and scheduled_jobs(services, queue.PAIRS) == []


def test_answers_rate_limited_for_long_are_given_once_the_wait_is_over_each_once(github, services, pair):
    """The job answering an installation's waiting commands, told to wait, leaves one job for
    later and the answers it has not given in the outbox."""
    github.faults.too_many_requests(times=1, retry_after=LONG, method="POST", path_contains="/reactions")
    first = github.as_user("rater-three").comment(REPO, pair["A"], "/prefer A\nCleaner.")
    second = github.as_user("rater-one").comment(REPO, pair["B"], "/prefer B\nShorter.")
    settle(github, services)

    assert sorted(judgments(services)) == [("rater-one", "B"), ("rater-three", "A")]
    waiting = [job.func_name for job, _when in scheduled_jobs(services, queue.PAIRS)]
    assert "workers.responses.acknowledge_waiting" in waiting
    time_passes(services, queue.PAIRS)
    settle(github, services)

    assert github.faults.pending == 0
    for number, comment in ((pair["A"], first), (pair["B"], second)):
        [shown] = [c for c in views.comments(github, REPO, number) if c["id"] == comment.id]
        assert shown["reactions"] == [("tandem[bot]", "+1")]
    assert failed_jobs(services) == [] and scheduled_jobs(services, queue.PAIRS) == []


def test_a_delivery_rate_limited_for_long_waits_for_the_limit(github, services, pair):
    github.faults.primary_rate_limit(times=1, reset_in=LONG, path_contains="/memberships/")
    github.as_user("rater-three").comment(REPO, pair["A"], "/prefer A")
    settle(github, services)
    [(job, _when)] = scheduled_jobs(services, queue.WEBHOOKS)
    assert job.retries_left == len(services.settings.job_retry_intervals)


# --- the retry policy, on GitHub's real answers -------------------------------------------------


def refusal(github, services, inject) -> RequestFailed:
    """The exception githubkit raises for a faulty answer (with no retry of its own)."""
    token = services.github.installation_token(github.installation.id)
    plain = GitHub(token, base_url=github.url, auto_retry=False, http_cache=False)
    inject()
    with pytest.raises(RequestFailed) as raised:
        plain.rest.repos.get("evals-org", "mlflow")
    return raised.value


@pytest.mark.parametrize(
    ("inject", "inline"),
    [
        (lambda f: f.secondary_rate_limit(retry_after=2), 2),
        (lambda f: f.too_many_requests(retry_after=1), 1),
        (lambda f: f.primary_rate_limit(reset_in=0), 0),  # reset already: retry now, not in 60 s
        (lambda f: f.secondary_rate_limit(retry_after=LONG), None),
        (lambda f: f.too_many_requests(retry_after=LONG), None),
        (lambda f: f.primary_rate_limit(reset_in=LONG), None),
    ],
)
def test_the_retry_policy_sleeps_short_waits_and_reschedules_long_ones(github, services, inject, inline):
    exc = refusal(github, services, lambda: inject(github.faults))
    policy = RetryPolicy(services.settings.max_inline_wait_seconds)
    if inline is None:
        with pytest.raises(RateLimited) as raised:
            policy(exc, 0)
        assert LONG - 5 <= raised.value.seconds <= LONG + 1
        return
    decision = policy(exc, 0)
    assert decision.do_retry and decision.retry_after, "githubkit sleeps 60 s for a zero delay"
    assert 0 < decision.retry_after.total_seconds() <= inline + 1
    # However short the waits, a request that keeps being limited is handed to the job's reschedule.
    with pytest.raises(RateLimited):
        policy(exc, 3)


def test_server_errors_are_retried_with_growing_back_off_then_given_up(github, services):
    exc = refusal(github, services, lambda: github.faults.fail(status=502, times=1))
    policy = RetryPolicy(services.settings.max_inline_wait_seconds)
    delays = []
    for count in range(10):
        decision = policy(exc, count)
        if not decision.do_retry:
            break
        delays.append(decision.retry_after.total_seconds())
    assert len(delays) == 3 and delays[0] < delays[2]
