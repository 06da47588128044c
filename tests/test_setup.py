"""The first-run setup: registering the GitHub App from app.yml through GitHub's manifest flow,
end to end against the emulator's web side, with Tandem served on a loopback port."""

from __future__ import annotations

import stat
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from app.main import create_app
from tandem.infra import app_registration, queue
from tandem.infra.db import Storage
from tandem.infra.github import GitHubApp
from tandem.infra.services import Services
from tandem.infra.settings import Settings
from tandem.sandbox.registration import Forms
from tests.conftest import make_settings
from tests.servers import LiveServer


class Setup:
    """Tandem with no credentials, served on loopback, and the browser's side of the flow: the
    operator's browser has opened the one-time link `tandem setup` printed."""

    def __init__(self, emu, server: LiveServer, settings: Settings, redis_conn):
        self.emu, self.server, self.settings, self.redis = emu, server, settings, redis_conn
        self.browser = self.new_browser()
        opened = self.open_link(self.browser, app_registration.new_setup_link(settings, redis_conn))
        assert opened.status_code == 200, opened.text

    def new_browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=30)

    @staticmethod
    def open_link(browser: httpx.Client, link: str) -> httpx.Response:
        return browser.get(link, follow_redirects=True)

    def post(self, path: str, data: dict, browser: httpx.Client | None = None, **headers) -> httpx.Response:
        """A form post as a browser sends it from Tandem's own page (with its Origin)."""
        headers.setdefault("Origin", self.server.url)
        return (browser or self.browser).post(path, data=data, headers=headers)

    def register(self, **form) -> httpx.Response:
        return self.post("/setup/register", form or {"owner": "user"})

    def complete(self, code: str, state: str, browser: httpx.Client | None = None) -> httpx.Response:
        return self.post("/setup/complete", {"code": code, "state": state}, browser)

    def finish(self, location: str) -> httpx.Response:
        """Follow GitHub's redirect back: the callback page posts the code on from our origin."""
        page = self.browser.get(location)
        assert page.status_code == 200, page.text
        [form] = Forms(page.text).forms
        assert (form["action"], form["method"]) == ("/setup/complete", "post")
        return self.post(form["action"], form["fields"])

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
    assert manifest["callback_urls"] == [f"{setup.server.url}/dashboard/login/callback"]

    redirect = setup.post_to_github(github_form)
    assert redirect.status_code == 302
    location = urlsplit(redirect.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{setup.server.url}/setup/callback"
    assert parse_qs(location.query)["state"] == [github_form["fields"]["state"]]

    done = setup.finish(redirect.headers["location"])
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
    # The OAuth client, for the dashboard's "Sign in with GitHub".
    assert loaded.client_id == app.client_id
    assert loaded.client_secret.get_secret_value() == app.client_secret
    assert f"private key in\n<code>{loaded.private_key_path}</code>" in done.text, "the page says where the key is"
    for path in (env_file, loaded.private_key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    client = GitHubApp(loaded, queue.connect(redis_url)).as_app()
    assert client.rest.apps.get_authenticated().parsed_data.id == app.id
    assert not list(env_file.parent.glob(".*.*")), "no temporary file left behind"


def test_registering_for_an_organization(setup):
    github_form = setup.github_form(owner="organization", organization="evals-org")
    assert urlsplit(github_form["action"]).path == "/organizations/evals-org/settings/apps/new"
    done = setup.finish(setup.post_to_github(github_form).headers["location"])
    assert done.status_code == 200, done.text
    [app] = [a for a in setup.emu.core.state.apps.values() if a.name == "Tandem"]
    assert app.owner.login == "evals-org" and f"app id {app.id}" in done.text


@pytest.mark.parametrize(
    "name",
    [
        "",
        "evals/../org",
        "evals org",
        "-evals",
        "evals-",
        "evals--org",
        "x" * 40,
        "<script>alert(1)</script>",
        "ev%2Fals",
    ],
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
    assert setup.finish(redirect.headers["location"]).status_code == 200
    env = setup.settings.env_file.read_text()

    assert setup.browser.get("/setup").status_code == 404
    assert setup.register().status_code == 404
    # GitHub registered a second app for the other tab; Tandem will not take it.
    code = setup.emu.manifest_code({"name": "Tandem two"})
    late = setup.browser.get("/setup/callback", params={"code": code, "state": second["fields"]["state"]})
    assert late.status_code == 404
    assert setup.complete(code, second["fields"]["state"]).status_code == 404
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
    forged = setup.complete(code, "forged")
    assert forged.status_code == 400 and "not from a registration started in this browser" in forged.text
    assert setup.complete(code, "").status_code == 400
    missing = setup.browser.get("/setup/callback", params={"code": code})
    assert missing.status_code == 400 and Forms(missing.text).forms == []
    assert not setup.settings.env_file.read_text().count("TANDEM_APP_ID")
    assert not [r for r in setup.emu.requests if r.operation_id == "apps/create-from-manifest"], "no code exchanged"

    # A state works once: the same callback link, replayed after a failed exchange, is refused.
    github_form = setup.github_form()
    state = github_form["fields"]["state"]
    failed = setup.complete("not-a-code", state)
    assert failed.status_code == 400
    replayed = setup.complete(code, state)
    assert replayed.status_code == 400 and "not from a registration started in this browser" in replayed.text
    assert setup.browser.get("/setup").status_code == 200, "setup is still available"


def test_an_unknown_or_used_code_gives_a_clear_page(setup):
    github_form = setup.github_form()
    redirect = setup.post_to_github(github_form)
    code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
    # Someone (or something) used the code already: GitHub's codes work once.
    assert httpx.post(f"{setup.emu.url}/app-manifests/{code}/conversions").status_code == 201
    page = setup.finish(redirect.headers["location"])
    assert page.status_code == 400
    assert "used already or has expired" in page.text and "/setup" in page.text
    assert "Traceback" not in page.text and "Internal Server Error" not in page.text
    assert "TANDEM_APP_ID" not in setup.settings.env_file.read_text()

    unknown = setup.github_form()["fields"]["state"]
    page = setup.complete("../../x?y", unknown)
    assert page.status_code == 400 and "used already or has expired" in page.text


def test_when_github_cannot_be_reached_the_same_link_works_once_it_can(setup):
    github_form = setup.github_form()
    location = setup.post_to_github(github_form).headers["location"]
    setup.settings.github_api_url = "http://127.0.0.1:9"  # nothing listens there
    page = setup.finish(location)
    assert page.status_code == 502 and "cannot be reached" in page.text
    setup.settings.github_api_url = setup.emu.url
    [again] = Forms(page.text).forms  # the page's Continue button sends the same code again
    page = setup.post(again["action"], again["fields"])
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
    assert setup.complete("c", "s").status_code == 404
    assert not setup.redis.keys("tandem:setup:state:*")


# --- attacks on the setup --------------------------------------------------------------------------


def no_registration_started(setup) -> bool:
    return not setup.redis.keys("tandem:setup:state:*")


def test_the_cli_prints_a_one_time_link_that_opens_the_setup_in_one_browser(setup, redis_url):
    from tests.support.cli import run

    env = {"TANDEM_REDIS_URL": redis_url, "TANDEM_PUBLIC_URL": setup.server.url}
    printed = run("setup", cwd=setup.settings.env_file.parent, **env)
    assert printed.returncode == 0, printed.stderr
    [link] = [word for word in printed.stdout.split() if word.startswith(f"{setup.server.url}/setup?key=")]

    browser = setup.new_browser()
    opened = browser.get(link)
    assert opened.status_code == 303 and opened.headers["location"] == "/setup", "the secret leaves the address bar"
    cookie = opened.headers["set-cookie"].lower()
    assert all(part in cookie for part in ("httponly", "samesite=strict", "path=/setup"))
    assert link.split("key=")[1] not in str(setup.redis.keys("*")), "Redis holds digests only"
    assert Forms(browser.get("/setup").text).forms[0]["action"] == "/setup/register"
    assert setup.post("/setup/register", {"owner": "user"}, browser).status_code == 200

    # The link works once: whoever opens it next (a link preview, a shoulder-surfer) is refused.
    late = setup.new_browser()
    refused = late.get(link, follow_redirects=True)
    assert refused.status_code == 403 and "used already" in refused.text
    assert late.get("/setup").status_code == 403


def test_a_connection_from_this_machine_is_not_enough(setup):
    """A local proxy (or any process on the server) forwards from loopback: without the link's
    session the setup shows nothing and starts nothing."""
    stranger = setup.new_browser()
    page = stranger.get("/setup")
    assert page.status_code == 403 and "tandem setup" in page.text
    assert Forms(page.text).forms == []
    assert setup.post("/setup/register", {"owner": "user"}, stranger).status_code == 403
    assert no_registration_started(setup)
    assert stranger.get("/setup", params={"key": "guessed"}).status_code == 403


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}", "[::2]:{port}"]
)
def test_a_rebound_host_name_is_refused(setup, host):
    """DNS rebinding: a page at evil.example, re-resolved to this server, sends its own Host. (The
    browser would not even send the cookie; here it does, and the Host alone refuses it.)"""
    host = host.format(port=setup.server.port)
    page = setup.browser.get("/setup", headers={"Host": host})
    assert page.status_code == 400 and "TANDEM_PUBLIC_URL" in page.text
    origin = f"http://{host}"
    assert setup.post("/setup/register", {"owner": "user"}, Host=host, Origin=origin).status_code == 400
    assert no_registration_started(setup)
    assert setup.browser.get("/setup", headers={"Host": f"localhost:{setup.server.port}"}).status_code == 200


@pytest.mark.parametrize("origin", ["https://evil.example", "null", None, "http://127.0.0.1:1"])
def test_a_cross_site_form_is_refused(setup, origin):
    """A form on another site posting to the setup (the cookie is sent, as by a browser that
    ignores SameSite): its Origin gives it away."""
    headers = {"Origin": origin} if origin else {"Origin": ""}
    refused = setup.browser.post("/setup/register", data={"owner": "user"}, headers=headers)
    assert refused.status_code == 403 and "not sent from Tandem's setup page" in refused.text
    assert no_registration_started(setup)

    state = setup.github_form()["fields"]["state"]
    code = setup.emu.manifest_code({"name": "Attacker's app"})
    refused = setup.browser.post("/setup/complete", data={"code": code, "state": state}, headers=headers)
    assert refused.status_code == 403
    assert not [r for r in setup.emu.requests if r.operation_id == "apps/create-from-manifest"], "no code exchanged"


def test_a_code_is_exchanged_only_for_the_browser_that_started_the_registration(setup):
    """The attacker registers their own app (with a state from their own setup session) and sends
    the operator's browser to the callback with its code: nothing binds Tandem to that app."""
    attacker = setup.new_browser()
    setup.open_link(attacker, app_registration.new_setup_link(setup.settings, setup.redis))
    attackers_page = setup.post("/setup/register", {"owner": "user"}, attacker)
    [attackers_form] = Forms(attackers_page.text).forms
    location = setup.post_to_github(attackers_form).headers["location"]

    setup.github_form()  # the operator has a registration of their own under way
    page = setup.finish(location)
    assert page.status_code == 400 and "not from a registration started in this browser" in page.text
    # Nor without any session (a browser that never opened the link).
    query = parse_qs(urlsplit(location).query)
    assert setup.complete(query["code"][0], query["state"][0], setup.new_browser()).status_code == 403
    assert not [r for r in setup.emu.requests if r.operation_id == "apps/create-from-manifest"], "no code exchanged"
    assert "TANDEM_APP_ID" not in setup.settings.env_file.read_text()


def test_the_cli_says_when_there_is_nothing_to_set_up(setup, redis_url):
    from tests.support.cli import run

    setup.settings.env_file.write_text("TANDEM_APP_ID=1\nTANDEM_WEBHOOK_SECRET=x\n")
    printed = run(
        "setup",
        cwd=setup.settings.env_file.parent,
        TANDEM_REDIS_URL=redis_url,
        TANDEM_ENV_FILE=str(setup.settings.env_file),
    )
    assert printed.returncode == 0 and "registered already" in printed.stdout and "key=" not in printed.stdout
