"""The dashboard over HTTP: who gets in (GitHub sign-in, API tokens), what each role sees, the
session's cookie and CSRF, and the landing page. tests/browser/ drives it in Chromium."""

from __future__ import annotations

import tomllib
import uuid
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import update
from starlette.testclient import TestClient

from app.main import create_app
from tandem.infra import budget, dead_letters, delivery_queue, queue, tokens
from tandem.infra.inbox import IncomingDelivery
from tandem.infra.models import DeadLetterKind, Judgment
from tests.conftest import make_settings, run_jobs, settle
from tests.dashboard_fixtures import REPO, TEAM, dashboard  # noqa: F401  (the fixture)


def _token(services, *scopes, team=TEAM) -> dict:
    with services.storage.transaction() as session:
        token = tokens.create_token(session, f"embed-{team}-{'-'.join(scopes)}", team=team, scopes=list(scopes))
    return {"Authorization": f"Bearer {token}"}


def test_the_landing_page_links_to_the_setup_until_registered_then_to_the_dashboard(services):
    client = TestClient(create_app(services))
    page = client.get("/")
    assert page.status_code == 200
    assert 'href="/setup"' in page.text and "tandem setup" in page.text and 'href="/api/docs"' in page.text
    services.settings.app_id, services.settings.webhook_secret = 1, SecretStr("s")
    services.settings.private_key = SecretStr("pem")
    page = TestClient(create_app(services)).get("/")
    assert 'href="/dashboard/"' in page.text and 'href="/setup"' not in page.text


def test_without_a_session_or_token_the_dashboard_asks_to_sign_in(services):
    client = TestClient(create_app(services), follow_redirects=False)
    for path in ("/dashboard/", "/dashboard/tasks", "/dashboard/leaderboard", "/dashboard/raters/x", "/dashboard/data"):
        answer = client.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/dashboard/login"), path
    login = client.get("/dashboard/login")
    assert "TANDEM_CLIENT_ID" in login.text, "an install without the OAuth client is told how to add it"


def test_a_team_member_signs_in_with_github_and_sees_the_models(dashboard):
    with httpx.Client() as client:
        answer = dashboard.sign_in(client, "research-lead")
        assert (answer.status_code, answer.headers["location"]) == (303, "/dashboard/")
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/dashboard" in cookie
        assert "secure" not in cookie, "plain http: a Secure cookie would never come back"
        overview = client.get(f"{dashboard.url}/dashboard/")
        assert overview.status_code == 200 and "research-lead" in overview.text
        task = client.get(f"{dashboard.url}/dashboard/tasks/{dashboard.task_id}")
        assert all(model in task.text for model in dashboard.models.values())
        assert "Cleaner fix." in task.text and "approved by reviewer-one" in task.text
        board = dashboard.computed(client, f"{dashboard.url}/dashboard/leaderboard")
        assert board.status_code == 200 and dashboard.models["A"] in board.text


def test_the_overview_shows_each_installations_write_budget(dashboard):
    """Opening the pair and answering the votes wrote to GitHub through the write budget."""
    services = dashboard.services
    writes = budget.usage(services.redis, dashboard.emu.installation.id).writes_last_hour
    assert writes > 0
    with httpx.Client(base_url=dashboard.url) as client:
        dashboard.sign_in(client, "ops-lead")
        page = client.get("/dashboard/")
    row = page.text.split('<tr class="installation">', 1)[1].split("</tr>", 1)[0]
    assert "evals-org" in row and f"{writes} of {services.settings.writes_per_hour}" in row


def test_a_rater_who_signs_in_sees_only_their_own_statistics_and_no_model(dashboard):
    with httpx.Client() as client:
        answer = dashboard.sign_in(client, "rater-one")
        assert (answer.status_code, answer.headers["location"]) == (303, "/dashboard/raters/rater-one")
        own = client.get(f"{dashboard.url}/dashboard/raters/rater-one")
        assert own.status_code == 200 and f"Task {dashboard.task_id}" in own.text
        assert not any(model in own.text for model in dashboard.models.values())
        for path in (
            "/dashboard/",
            "/dashboard/leaderboard",
            f"/dashboard/tasks/{dashboard.task_id}",
            "/dashboard/raters",
            "/dashboard/raters/rater-two",
            "/dashboard/data/judgments.jsonl",
        ):
            refused = client.get(f"{dashboard.url}{path}")
            assert refused.status_code == 403, path
            assert not any(model in refused.text for model in dashboard.models.values())


def test_a_rater_cannot_filter_their_own_statistics(dashboard):
    """Filters of a rater's choosing would narrow their figures to one task (is it gold? how did
    the others vote?) and start a fresh fit over every team each time: their page ignores them."""
    with httpx.Client(base_url=dashboard.url) as client:
        dashboard.sign_in(client, "rater-one")
        plain = dashboard.computed(client, "/dashboard/raters/rater-one")
        filtered = client.get("/dashboard/raters/rater-one?include_unapproved=1&round=1&since=2099-01-01&repo=x")
    assert filtered.status_code == 200 and filtered.text == plain.text
    assert "rater-figures" in filtered.text and "2099" not in filtered.text


def test_a_rater_is_known_by_their_github_id_not_their_login(dashboard):
    """GitHub lets a login be renamed and taken by someone else: the votes cast under rater-one by
    another account (another id) are not the signed-in rater-one's."""
    with dashboard.services.storage.transaction() as session:
        session.execute(
            update(Judgment).where(Judgment.rater_login == "rater-one").values(rater_id=Judgment.rater_id + 10**9)
        )
    with httpx.Client(base_url=dashboard.url) as client:
        dashboard.sign_in(client, "rater-one")
        own = dashboard.computed(client, "/dashboard/raters/rater-one")
    assert own.status_code == 200
    assert f"Task {dashboard.task_id}" not in own.text and "rater-figures" not in own.text


def test_a_sign_in_not_started_in_this_browser_is_refused(dashboard):
    with httpx.Client() as victim, httpx.Client() as attacker:
        start = attacker.get(f"{dashboard.url}/dashboard/login/github")
        query = httpx.URL(start.headers["location"]).params
        granted = attacker.post(f"{dashboard.emu.url}/login/oauth/authorize", data={**query, "login": "outsider"})
        # The attacker's callback link, opened by someone else's browser, signs nobody in.
        answer = victim.get(granted.headers["location"])
        assert answer.status_code == 400 and "set-cookie" not in answer.headers
        assert victim.get(f"{dashboard.url}/dashboard/", follow_redirects=False).status_code == 303


def test_tokens_read_their_own_team_only_and_see_models_only_with_the_export_scope(dashboard):
    services = dashboard.services
    with httpx.Client(base_url=dashboard.url) as client:
        reader = _token(services, "read")
        page = client.get(f"/dashboard/tasks/{dashboard.task_id}", headers=reader)
        assert page.status_code == 200 and "Cleaner fix." in page.text
        assert not any(model in page.text for model in dashboard.models.values())
        assert client.get("/dashboard/leaderboard", headers=reader).status_code == 403
        researcher = _token(services, "read", "export")
        assert dashboard.models["A"] in client.get(f"/dashboard/tasks/{dashboard.task_id}", headers=researcher).text
        other_team = _token(services, "read", "export", team="another-lab")
        assert client.get(f"/dashboard/tasks/{dashboard.task_id}", headers=other_team).status_code == 404
        assert str(dashboard.task_id) not in client.get("/dashboard/data/judgments.jsonl", headers=other_team).text
        empty = client.get("/dashboard/tasks", headers=other_team).text
        assert "No tasks yet" in empty and "tandem task submit examples/task.yml --team another-lab" in empty
        unmatched = client.get("/dashboard/tasks?status=failed", headers=reader).text
        assert "No task matches these filters" in unmatched
        assert client.get("/dashboard/", headers=_token(services, "submit")).status_code == 403
        assert client.get("/dashboard/", headers={"Authorization": "Bearer tandem_nonsense"}).status_code == 401


def test_the_retry_button_needs_the_session_and_its_csrf_token(dashboard):
    services = dashboard.services
    dead_letters.park(
        services, IncomingDelivery("guid-1", "issue_comment", "created", "{}"), DeadLetterKind.FAILED, "boom"
    )
    with httpx.Client(base_url=dashboard.url) as client:
        token_post = client.post(
            "/dashboard/retry", data={"delivery": "guid-1"}, headers=_token(services, "read", "export")
        )
        assert token_post.status_code == 403, "a token is read-only"
        dashboard.sign_in(client, "ops-lead")
        forged = client.post("/dashboard/retry", data={"delivery": "guid-1", "csrf": "guessed"})
        assert forged.status_code == 403
        assert services.queue("webhooks").count == 0
        page = client.get("/dashboard/")
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        retried = client.post("/dashboard/retry", data={"delivery": "guid-1", "csrf": csrf})
        assert retried.status_code == 303
        assert services.queue("webhooks").count == 1
        [letter] = dead_letters.listing(services)
        assert letter.retried_at is not None


def test_queue_health_and_retry_are_for_the_operators_only(dashboard):
    """Dead letters and write budgets span every team and installation: a team member who is not
    an operator, or any token, sees the rest of the overview and may not retry."""
    services = dashboard.services
    dead_letters.park(
        services, IncomingDelivery("guid-2", "issue_comment", "created", "{}"), DeadLetterKind.FAILED, "secret reason"
    )
    with httpx.Client(base_url=dashboard.url) as client:
        for_token = dashboard.computed(client, "/dashboard/", headers=_token(services, "read", "export"))
        dashboard.sign_in(client, "research-lead")
        page = client.get("/dashboard/")
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        refused = client.post("/dashboard/retry", data={"delivery": "guid-2", "csrf": csrf})
    for overview in (for_token, page):
        assert overview.status_code == 200 and "Waits (medians)" in overview.text
        assert "Queue health is for the operators" in overview.text
        assert "guid-2" not in overview.text and "secret reason" not in overview.text
        assert 'class="installation"' not in overview.text
    assert refused.status_code == 403 and services.queue("webhooks").count == 0


def test_the_operators_setting_reads_from_the_environment(monkeypatch):
    monkeypatch.setenv("TANDEM_DASHBOARD_OPERATORS", '["ops-lead"]')
    assert make_settings().dashboard_operators == ["ops-lead"]


def test_a_failed_job_is_put_back_on_its_queue(dashboard):
    services = dashboard.services
    failing = services.queue("default").enqueue("builtins.int", "not a number")
    SimpleWorker([services.queue("default")], connection=services.redis, serializer=JSONSerializer).work(burst=True)
    assert services.queue("default").failed_job_registry.get_job_ids() == [failing.id]
    with httpx.Client(base_url=dashboard.url) as client:
        dashboard.sign_in(client, "ops-lead")
        page = client.get("/dashboard/")
        assert f"Retry job {failing.id}" in page.text
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        unknown = client.post("/dashboard/retry", data={"queue": "default", "job": "no-such-job", "csrf": csrf})
        assert unknown.status_code == 404
        retried = client.post("/dashboard/retry", data={"queue": "default", "job": failing.id, "csrf": csrf})
        assert retried.status_code == 303
    assert services.queue("default").get_job_ids() == [failing.id]
    assert services.queue("default").failed_job_registry.count == 0


def test_the_statistics_follow_a_new_review_once_their_job_has_run(dashboard):
    """The report is kept in Redis; after an approval the page shows the report before, saying so,
    until the job it queued has computed the new one."""
    with httpx.Client(base_url=dashboard.url) as client:
        dashboard.sign_in(client, "research-lead")
        before = dashboard.computed(client, "/dashboard/raters").text
        assert "rater-one" in before and "rater-two" not in before and 'id="as-of"' not in before
        dashboard.emu.as_user("reviewer-one").comment(REPO, dashboard.prs["B"], "/approve @rater-two")
        settle(dashboard.emu, dashboard.services)
        stale = client.get("/dashboard/raters").text
        assert 'id="as-of"' in stale and "being refreshed" in stale and "rater-two" not in stale
        assert len(dashboard.services.queue(queue.DASHBOARD).get_job_ids()) == 1
        run_jobs(dashboard.services, [queue.DASHBOARD])
        fresh = client.get("/dashboard/raters").text
        assert "rater-two" in fresh and 'id="as-of"' not in fresh


def test_behind_https_the_session_cookie_is_secure(services):
    services.settings.public_url = "https://tandem.example.org"
    services.settings.client_id, services.settings.client_secret = "Iv1.x", SecretStr("secret")
    client = TestClient(create_app(services), base_url="https://tandem.example.org", follow_redirects=False)
    answer = client.get("/dashboard/login/github")
    assert answer.status_code == 303
    assert "secure" in answer.headers["set-cookie"].lower()


@pytest.mark.parametrize("value", ['["evals-org/lab"]'])
def test_the_dashboard_teams_setting_reads_from_the_environment(monkeypatch, value):
    monkeypatch.setenv("TANDEM_DASHBOARD_TEAMS", value)
    assert make_settings().dashboard_teams == ["evals-org/lab"]


def test_a_wheel_ships_the_dashboards_packages_templates_and_stylesheet():
    """Tandem runs without internet access: all the pages need must be in the package."""
    from setuptools import find_packages

    root = Path(__file__).parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = find_packages(root, include=config["packages"]["find"]["include"])
    assert {"app.dashboard", "tandem.domain.dashboard"} <= set(packages)
    patterns = config["package-data"]["app"]
    needed = [path for folder in ("templates", "static") for path in (root / "app" / "dashboard" / folder).iterdir()]
    assert needed and all(any(fnmatch(str(path.relative_to(root / "app")), p) for p in patterns) for path in needed)


def test_the_emulators_oauth_gives_a_user_token_once_per_code_and_only_to_the_client(emulator):
    app = emulator.register_app(slug="tandem", name="Tandem", webhook_secret="s")
    emulator.create_user("octocat")
    callback = "http://127.0.0.1:1/dashboard/login/callback"
    with httpx.Client(base_url=emulator.url, headers={"Accept": "application/json"}) as client:
        page = client.get(
            "/login/oauth/authorize", params={"client_id": app.client_id, "redirect_uri": callback, "state": "s1"}
        )
        assert 'id="authorize-octocat"' in page.text
        granted = client.post(
            "/login/oauth/authorize",
            data={"client_id": app.client_id, "redirect_uri": callback, "state": "s1", "login": "octocat"},
        )
        code = httpx.URL(granted.headers["location"]).params["code"]
        trade = {"client_id": app.client_id, "client_secret": app.client_secret, "code": code}
        assert (
            client.post("/login/oauth/access_token", data=trade | {"client_secret": "wrong"}).json()["error"]
            == "incorrect_client_credentials"
        )
        token = client.post("/login/oauth/access_token", data=trade).json()["access_token"]
        assert client.post("/login/oauth/access_token", data=trade).json()["error"] == "bad_verification_code"
        assert client.get("/user", headers={"Authorization": f"Bearer {token}"}).json()["login"] == "octocat"
        assert client.get("/user", headers={"Authorization": "Bearer ghu_unknown"}).status_code == 401


def test_the_data_page_downloads_every_export_format_of_the_viewers_team_only(dashboard):
    import io
    import json

    import pyarrow.parquet as pq

    from tandem.domain.export_formats import FORMATS

    with httpx.Client(base_url=dashboard.url) as client:
        research = _token(dashboard.services, "read", "export")
        other_team = _token(dashboard.services, "read", "export", team="another-lab")
        page = client.get("/dashboard/data", headers=research).text
        for name in FORMATS:
            assert f'id="download-{name}"' in page and f'id="download-{name}-parquet"' in page
            lines = client.get(f"/dashboard/data/export?format={name}", headers=research)
            assert lines.status_code == 200, (name, lines.text)
            parquet = client.get(f"/dashboard/data/export?format={name}&parquet=true", headers=research)
            assert parquet.status_code == 200
            assert pq.read_table(io.BytesIO(parquet.content)).num_rows == len(lines.text.splitlines())
            assert client.get(f"/dashboard/data/export?format={name}", headers=other_team).text == ""
        rows = client.get("/dashboard/data/export?format=battles", headers=research).text.splitlines()
        assert rows and all(json.loads(row)["task_id"] == dashboard.task_id for row in rows)
        assert client.get("/dashboard/data/export?format=nope", headers=research).status_code == 400


def _organization_config(dashboard, text: str) -> None:
    """The organization's `.github/tandem.yml`, pushed: the push webhook (which the emulator does
    not send: its fields, as tests/test_repo_config.py gives them) drops the cached file."""
    dashboard.emu.create_repository("evals-org", ".github", files={".github/tandem.yml": text})
    push = {
        "ref": "refs/heads/main",
        "repository": {"full_name": "evals-org/.github", "default_branch": "main"},
        "installation": {"id": dashboard.emu.installation.id},
    }
    delivery_queue.accept_delivery(dashboard.services, str(uuid.uuid4()), "push", None, push)
    settle(dashboard.emu, dashboard.services)


def _signed_in_as(dashboard, login: str) -> str:
    """Where the sign-in sends ``login``: the overview for a team member, their own page for a rater."""
    with httpx.Client() as client:
        answer = dashboard.sign_in(client, login)
        assert answer.status_code == 303, answer.text
        return answer.headers["location"]


def test_the_teams_in_the_organizations_config_let_their_members_in(dashboard):
    dashboard.services.settings.dashboard_teams = []
    assert _signed_in_as(dashboard, "research-lead") == "/dashboard/raters/research-lead", "no team yet"
    _organization_config(dashboard, f"dashboard:\n  teams: [{TEAM}]\n")
    assert _signed_in_as(dashboard, "research-lead") == "/dashboard/"
    assert _signed_in_as(dashboard, "rater-one") == "/dashboard/raters/rater-one", "an org member outside the team"


def test_the_setting_and_the_organizations_config_both_grant_the_dashboard(dashboard):
    dashboard.emu.create_user("ml-lead")
    dashboard.emu.add_org_member("evals-org", "ml-lead")
    dashboard.emu.create_team("evals-org", "ml-evals", members=["ml-lead"])
    _organization_config(dashboard, "dashboard:\n  teams: [ml-evals]\n")
    with httpx.Client(base_url=dashboard.url) as client:
        assert dashboard.sign_in(client, "ml-lead").headers["location"] == "/dashboard/"
        assert "team ml-evals" in client.get("/dashboard/").text, "the team's slug names the Tandem team"
    assert _signed_in_as(dashboard, "research-lead") == "/dashboard/", "TANDEM_DASHBOARD_TEAMS still counts"
    assert _signed_in_as(dashboard, "outsider") == "/dashboard/raters/outsider"


def test_an_invalid_organization_config_leaves_the_settings_teams(dashboard):
    _organization_config(dashboard, "dashboard:\n  team: [ml-evals]\n")
    assert _signed_in_as(dashboard, "research-lead") == "/dashboard/"
    assert _signed_in_as(dashboard, "outsider") == "/dashboard/raters/outsider"
