"""The dashboard on a live server, with GitHub (the emulator) set up for signing in: the app's
OAuth client configured, a research team `lab` in evals-org (member: research-lead) granted the
dashboard, with ops-lead (also in `lab`) its operator, and one real task of team `lab` with an open
pair, two votes and an approval.

Test modules import the fixture: `from tests.dashboard_fixtures import dashboard  # noqa: F401`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from app.main import create_app
from tandem.domain import tasks
from tandem.domain.task_spec import parse_task
from tandem.infra import queue
from tandem.infra.models import Task
from tandem.infra.services import Services
from tests.conftest import run_jobs, settle, small_task
from tests.servers import LiveServer

TEAM = "lab"
REPO = "evals-org/mlflow"


@dataclass
class Dashboard:
    url: str
    services: Services
    emu: object
    task_id: int
    models: dict[str, str]  # side -> model
    prs: dict[str, int]  # side -> pull request number

    def sign_in(self, client: httpx.Client, login: str) -> httpx.Response:
        """Sign in as ``login`` through the emulator's OAuth pages; the answer to the callback."""
        start = client.get(f"{self.url}/dashboard/login/github")
        assert start.status_code == 303, start.text
        query = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["location"]).query).items()}
        granted = client.post(f"{self.emu.url}/login/oauth/authorize", data={**query, "login": login})
        assert granted.status_code == 302, granted.text
        return client.get(granted.headers["location"])

    def computed(self, client: httpx.Client, path: str, **options) -> httpx.Response:
        """The page at ``path`` with its figures computed: if they were being computed, the
        dashboard's queued jobs run (as a worker would), and the page is asked again."""
        answer = client.get(path, **options)
        if 'id="computing"' in answer.text:
            run_jobs(self.services, [queue.DASHBOARD])
            answer = client.get(path, **options)
        assert 'id="computing"' not in answer.text, "the figures were computed"
        return answer


@pytest.fixture
def dashboard(github, services, blinding) -> Dashboard:
    app = github.core.state.apps_by_slug["tandem"]
    services.settings.client_id = app.client_id
    services.settings.client_secret = SecretStr(app.client_secret)
    services.settings.dashboard_teams = [f"evals-org/{TEAM}"]
    services.settings.dashboard_operators = ["ops-lead"]
    for login in ("research-lead", "ops-lead"):
        github.create_user(login)
        github.add_org_member("evals-org", login)
    github.create_team("evals-org", TEAM, members=["research-lead", "ops-lead"])

    task_id = tasks.submit(services, parse_task(small_task(blinding)), "test", team=TEAM)
    settle(github, services)
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        assert task.status == "open", task.failure_reason
        prs = {side.letter: side.pr_number for side in task.pair.sides}
        models = {side.letter: side.output.model for side in task.pair.sides}
    github.as_user("rater-one").comment(REPO, prs["A"], "/prefer A\nCleaner fix.")
    github.as_user("rater-two").comment(REPO, prs["B"], "/prefer B slightly\nKeeps the old behaviour.")
    settle(github, services)
    github.as_user("reviewer-one").comment(REPO, prs["A"], "/approve @rater-one\nGood rationale.")
    settle(github, services)

    with LiveServer(create_app(services)) as server:
        services.settings.public_url = server.url
        yield Dashboard(server.url, services, github, task_id, models, prs)
