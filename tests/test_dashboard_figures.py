"""The dashboard's figures are computed by a job, never by a page (tandem.domain.dashboard.report):
a page shows the figures of the data as it is if they were computed, else the latest ones saying
as of when (or that they are being computed, refreshing itself), and queues one job for them."""

from __future__ import annotations

import threading

import httpx

from tandem.domain.dashboard import report
from tandem.infra import job_names, queue, redis_keys, tokens
from tests.conftest import run_jobs, settle
from tests.dashboard_fixtures import REPO, TEAM, dashboard  # noqa: F401  (the fixture)

REFRESH = '<meta http-equiv="refresh"'


def _researcher(services) -> dict:
    with services.storage.transaction() as session:
        token = tokens.create_token(session, "embed", team=TEAM, scopes=["read", "export"])
    return {"Authorization": f"Bearer {token}"}


def _queued(services) -> list:
    return services.queue(queue.DASHBOARD).get_jobs()


def _vote(dashboard) -> None:
    """rater-one changes their mind: new data for every figure of the team (a vote version)."""
    dashboard.emu.as_user("rater-one").comment(REPO, dashboard.prs["A"], "/prefer B\nOn reflection, simpler.")
    dashboard.emu.drain()
    # The delivery's jobs, not the dashboard's: those are the test's to run.
    run_jobs(dashboard.services, [queue.WEBHOOKS, queue.PAIRS, queue.DEFAULT])


def test_figures_never_computed_are_queued_not_computed_and_the_page_refreshes_itself(dashboard):
    services = dashboard.services
    with httpx.Client(base_url=dashboard.url, headers=_researcher(services)) as client:
        first = client.get("/dashboard/leaderboard")
        assert first.status_code == 200 and 'id="computing"' in first.text and REFRESH in first.text
        assert "The leaderboard is being computed; this page refreshes itself" in first.text
        assert dashboard.models["A"] not in first.text
        [job] = _queued(services)
        assert job.func_name == job_names.COMPUTE_DASHBOARD_FIGURES and not job.args
        assert job.kwargs[job_names.VERSION] == 1 and job.kwargs["team"] == TEAM
        assert client.get("/dashboard/leaderboard").text == first.text, "asked again: the same job"
        assert len(_queued(services)) == 1
        run_jobs(services, [queue.DASHBOARD])
        computed = client.get("/dashboard/leaderboard")
    assert dashboard.models["A"] in computed.text
    assert REFRESH not in computed.text and 'id="as-of"' not in computed.text and 'id="computing"' not in computed.text
    assert _queued(services) == []


def test_after_a_new_vote_each_page_shows_the_figures_before_and_queues_one_job_that_computes_them(dashboard):
    services = dashboard.services
    pages = ("/dashboard/", "/dashboard/leaderboard", "/dashboard/raters", "/dashboard/raters/rater-one")
    with httpx.Client(base_url=dashboard.url, headers=_researcher(services)) as client:
        before = {path: dashboard.computed(client, path).text for path in pages}
        assert "2 votes in the last 30 days" in before["/dashboard/"]
        _vote(dashboard)
        stale = {path: client.get(path).text for path in pages}
        for path, text in stale.items():
            assert 'id="as-of"' in text and "being refreshed" in text and REFRESH not in text, path
        assert "2 votes in the last 30 days" in stale["/dashboard/"], "the figures before"
        # One job for the overview, one for the team's report (the leaderboard's and the raters'):
        # the second view of the same figures queues nothing.
        assert sorted(job.kwargs["kind"] for job in _queued(services)) == [report.OVERVIEW, report.REPORT]
        run_jobs(services, [queue.DASHBOARD])
        fresh = {path: client.get(path).text for path in pages}
    for path, text in fresh.items():
        assert 'id="as-of"' not in text, path
    assert "3 votes in the last 30 days" in fresh["/dashboard/"]
    assert _queued(services) == []


def test_concurrent_views_of_stale_figures_queue_one_job(dashboard):
    services = dashboard.services
    headers = _researcher(services)
    with httpx.Client(base_url=dashboard.url, headers=headers) as client:
        dashboard.computed(client, "/dashboard/leaderboard")
    _vote(dashboard)
    views = 8
    start, answers = threading.Barrier(views), []

    def view() -> None:
        with httpx.Client(base_url=dashboard.url, headers=headers) as client:
            start.wait()
            answers.append(client.get("/dashboard/leaderboard"))

    threads = [threading.Thread(target=view) for _ in range(views)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == views and all('id="as-of"' in answer.text for answer in answers)
    assert len(_queued(services)) == 1


def test_a_job_for_figures_already_computed_computes_nothing(dashboard):
    """A job queued again (its lock expired while it waited) finds the figures kept."""
    services = dashboard.services
    figures = report.Figures.overview(TEAM)
    assert report.kept(services, figures).figures is None
    assert report.compute(services, figures) is True
    assert report.compute(services, figures) is False
    assert report.kept(services, figures).figures is not None
    with services.storage.transaction() as session:
        described = figures.described(session)
    assert services.redis.ttl(redis_keys.dashboard_computing(described)) > 0, "the view's job is still queued"
    settle(dashboard.emu, services)
    assert _queued(services) == []
