"""The first-run setup: registering the GitHub App from app.yml through GitHub's manifest flow,
end to end against the emulator's web side, with Tandem served on a loopback port."""

from __future__ import annotations

import stat
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from app.main import create_app
from tandem import app_registration, queue
from tandem.db import Storage
from tandem.github import GitHubApp
from tandem.services import Services
from tandem.settings import Settings
from tests.conftest import make_settings
from tests.servers import LiveServer


class Forms(HTMLParser):
    """The forms of a page: action, method and fields (as a browser would submit them)."""

    def __init__(self, page: str):
        super().__init__()
        self.forms: list[dict] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "method": attrs.get("method"), "fields": {}})
        elif tag == "input" and self.forms and attrs.get("name"):
            if attrs.get("type") == "radio" and "checked" not in attrs:
                return
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value", "")


class Setup:
    """Tandem with no credentials, served on loopback, and the browser's side of the flow."""

    def __init__(self, emu, server: LiveServer, settings: Settings, redis_conn):
        self.emu, self.server, self.settings, self.redis = emu, server, settings, redis_conn
        self.browser = httpx.Client(base_url=server.url, timeout=30)

    def register(self, **form) -> httpx.Response:
        return self.browser.post("/setup/register", data=form or {"owner": "user"})

    def github_form(self, **form) -> dict:
        """Start a registration; returns the self-submitting form Tandem answers with."""
        page = self.register(**form)
        assert page.status_code == 200, page.text
        [github_form] = Forms(page.text).forms
        assert github_form["method"] == "post"
        return github_form

    def post_to_github(self, github_form: dict) -> httpx.Response:
        """What the page's script does: post the manifest to GitHub (no redirect followed)."""
        return httpx.post(github_form["action"], data=github_form["fields"], follow_redirects=False, timeout=30)



@pytest.fixture
def setup(emulator, redis_conn, redis_url, tmp_path):
    env_file = tmp_path / "config" / ".env"
    env_file.parent.mkdir()
    env_file.write_text("TANDEM_LOG_LEVEL=DEBUG\nTANDEM_PRIVATE_KEY=stale-and-wrong\n")
    settings = make_settings(redis_url=redis_url, env_file=env_file, github_api_url=emulator.url)
    services = Services(
        settings=settings,
        storage=Storage.from_url(f"sqlite:///{tmp_path / 'tandem.db'}"),
        redis=redis_conn,
        github=GitHubApp(settings, redis_conn),
    )
    emulator.create_user("octocat")
    emulator.create_org("evals-org", admins=["octocat"])
    server = LiveServer(create_app(services))
    settings.public_url = server.url
    with server:
        yield Setup(emulator, server, settings, redis_conn)
    assert not emulator.server_errors


def test_registering_on_a_personal_account_writes_working_credentials(setup, redis_url):
    page = setup.browser.get("/setup")
    assert page.status_code == 200
    [form] = Forms(page.text).forms
    assert form["action"] == "/setup/register" and form["fields"]["owner"] == "user"

    github_form = setup.github_form(owner="user")
    assert github_form["action"].startswith(f"{setup.emu.url}/settings/apps/new?state=")
    manifest = yaml.safe_load(github_form["fields"]["manifest"])  # JSON is YAML
    assert manifest["name"] == "Tandem"
    assert manifest["redirect_url"] == f"{setup.server.url}/setup/callback"
    assert manifest["hook_attributes"]["url"] == f"{setup.server.url}/webhooks/github"

    redirect = setup.post_to_github(github_form)
    assert redirect.status_code == 302
    location = urlsplit(redirect.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{setup.server.url}/setup/callback"
    assert parse_qs(location.query)["state"] == [github_form["fields"]["state"]]

    done = setup.browser.get(redirect.headers["location"])
    assert done.status_code == 200, done.text
    [app] = [a for a in setup.emu.core.state.apps.values() if a.name == "Tandem"]
    assert f"app id {app.id}" in done.text
    assert str(setup.settings.env_file) in done.text and "Restart" in done.text
    assert f"{setup.emu.url}/apps/{app.slug}/installations/new" in done.text
    # The app GitHub registered is the one app.yml describes.
    described = yaml.safe_load(app_registration.MANIFEST_FILE.read_text())
    assert app.permissions == described["default_permissions"]
    assert app.webhook_url == f"{setup.server.url}/webhooks/github"
    assert app.owner.login == "app-developer"

    # The .env file loads into settings that work against GitHub.
    env_file = setup.settings.env_file
    loaded = Settings(_env_file=env_file, redis_url=redis_url, github_api_url=setup.emu.url)
    assert loaded.app_id == app.id
    assert loaded.webhook_secret.get_secret_value() == app.webhook_secret
    assert loaded.private_key is None, "a stale TANDEM_PRIVATE_KEY would override the new key"
    assert loaded.log_level == "DEBUG", "the file's other settings are kept"
    assert loaded.private_key_pem() == app.private_key_pem
    for path in (env_file, loaded.private_key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    client = GitHubApp(loaded, queue.connect(redis_url)).as_app()
    assert client.rest.apps.get_authenticated().parsed_data.id == app.id
    assert not list(env_file.parent.glob(".*.*")), "no temporary file left behind"


def test_registering_for_an_organization(setup):
    github_form = setup.github_form(owner="organization", organization="evals-org")
    assert urlsplit(github_form["action"]).path == "/organizations/evals-org/settings/apps/new"
    page = httpx.post(github_form["action"], data=github_form["fields"], follow_redirects=True, timeout=30)
    assert page.status_code == 200, page.text
    [app] = [a for a in setup.emu.core.state.apps.values() if a.name == "Tandem"]
    assert app.owner.login == "evals-org"


@pytest.mark.parametrize(
    "name",
    ["", "evals/../org", "evals org", "-evals", "evals-", "evals--org", "x" * 40, "<script>alert(1)</script>", "ev%2Fals"],
)
def test_an_organization_name_github_would_not_allow_is_refused(setup, name):
    page = setup.register(owner="organization", organization=name)
    assert page.status_code == 400
    assert "<script>alert" not in page.text
    assert Forms(page.text).forms == [], "nothing is sent to GitHub"
    assert not setup.redis.keys("tandem:setup:state:*"), "no registration was started"


def test_once_registered_every_setup_route_is_gone(setup):
    first = setup.github_form()
    second = setup.github_form()  # another tab, started before the first finished
    redirect = setup.post_to_github(first)
    assert redirect.status_code == 302
    assert setup.browser.get(redirect.headers["location"]).status_code == 200
    env = setup.settings.env_file.read_text()

    assert setup.browser.get("/setup").status_code == 404
    assert setup.register().status_code == 404
    # GitHub registered a second app for the other tab; Tandem will not take it.
    code = setup.emu.manifest_code({"name": "Tandem two"})
    late = setup.browser.get("/setup/callback", params={"code": code, "state": second["fields"]["state"]})
    assert late.status_code == 404
    assert setup.settings.env_file.read_text() == env


def test_a_registration_finishing_second_does_not_overwrite_the_first(setup):
    """Two registrations that both passed the 'not registered yet' check: the second to exchange
    its code finds the credentials of the first and leaves them alone."""
    first_code = setup.emu.manifest_code({"name": "Tandem"})
    second_code = setup.emu.manifest_code({"name": "Tandem two"})
    first = app_registration.complete(setup.settings, first_code, setup.redis)
    env = setup.settings.env_file.read_text()
    with pytest.raises(app_registration.AlreadyRegistered):
        app_registration.complete(setup.settings, second_code, setup.redis)
    assert setup.settings.env_file.read_text() == env
    assert f"TANDEM_APP_ID={first['id']}" in env


def test_a_forged_or_replayed_state_is_refused(setup):
    code = setup.emu.manifest_code({"name": "Tandem"})
    forged = setup.browser.get("/setup/callback", params={"code": code, "state": "forged"})
    assert forged.status_code == 400 and "not from a registration started here" in forged.text
    missing = setup.browser.get("/setup/callback", params={"code": code})
    assert missing.status_code == 400
    assert not setup.settings.env_file.read_text().count("TANDEM_APP_ID")
    assert not [r for r in setup.emu.requests if r.operation_id == "apps/create-from-manifest"], "no code exchanged"

    # A state works once: the same callback link, replayed after a failed exchange, is refused.
    github_form = setup.github_form()
    state = github_form["fields"]["state"]
    failed = setup.browser.get("/setup/callback", params={"code": "not-a-code", "state": state})
    assert failed.status_code == 400
    replayed = setup.browser.get("/setup/callback", params={"code": code, "state": state})
    assert replayed.status_code == 400 and "not from a registration started here" in replayed.text
    assert setup.browser.get("/setup").status_code == 200, "setup is still available"


def test_an_unknown_or_used_code_gives_a_clear_page(setup):
    github_form = setup.github_form()
    redirect = setup.post_to_github(github_form)
    code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
    # Someone (or something) used the code already: GitHub's codes work once.
    assert httpx.post(f"{setup.emu.url}/app-manifests/{code}/conversions").status_code == 201
    page = setup.browser.get(redirect.headers["location"])
    assert page.status_code == 400
    assert "used already or has expired" in page.text and "/setup" in page.text
    assert "Traceback" not in page.text and "Internal Server Error" not in page.text
    assert "TANDEM_APP_ID" not in setup.settings.env_file.read_text()

    unknown = setup.github_form()["fields"]["state"]
    page = setup.browser.get("/setup/callback", params={"code": "../../x?y", "state": unknown})
    assert page.status_code == 400 and "used already or has expired" in page.text


def test_when_github_cannot_be_reached_the_same_link_works_once_it_can(setup):
    github_form = setup.github_form()
    location = setup.post_to_github(github_form).headers["location"]
    setup.settings.github_api_url = "http://127.0.0.1:9"  # nothing listens there
    page = setup.browser.get(location)
    assert page.status_code == 502 and "cannot be reached" in page.text and "reload" in page.text
    setup.settings.github_api_url = setup.emu.url
    page = setup.browser.get(location)
    assert page.status_code == 200, page.text
    assert "TANDEM_APP_ID" in setup.settings.env_file.read_text()


def test_an_app_running_with_credentials_has_no_setup(setup):
    from pydantic import SecretStr

    setup.settings.app_id = 12345
    setup.settings.webhook_secret = SecretStr("s")
    setup.settings.private_key = SecretStr("configured through the environment")
    assert setup.browser.get("/setup").status_code == 404
    assert setup.register().status_code == 404
    assert setup.browser.get("/setup/callback", params={"code": "c", "state": "s"}).status_code == 404
    assert not setup.redis.keys("tandem:setup:state:*")


def test_setup_answers_only_this_machine(services):
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(services), client=("203.0.113.7", 50000)) as remote:
        assert remote.get("/setup").status_code == 404
        assert remote.post("/setup/register", data={"owner": "user"}).status_code == 404
    with TestClient(create_app(services), client=("127.0.0.1", 50000)) as local:
        assert local.get("/setup").status_code == 200
