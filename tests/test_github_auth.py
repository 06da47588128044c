"""Tandem authenticating to GitHub as the app (JWT) and as its installations (tokens), against the
emulator: the JWT's claims, installation tokens shared by every process through Redis and
dropped from the cache before GitHub's expiry, refreshed on 401, and a GitHub Enterprise Server
API URL with a path prefix (through a loopback proxy, as GHES serves it under /api/v3)."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from tandem.infra import queue
from tandem.infra.github import GitHubApp
from tandem.infra.settings import Settings
from tests.conftest import make_settings
from tests.servers import LiveServer
from tests.support.http_proxy import LoopbackProxy
from tests.support.tcp_proxy import TcpProxy

TOKEN_POST = "apps/create-installation-access-token"


@pytest.fixture
def world(emulator, redis_conn, redis_url):
    """The app registered and installed on evals-org (no Tandem server: its webhooks go nowhere)."""
    app = emulator.register_app(slug="tandem", name="Tandem", webhook_secret="s")
    emulator.create_org("evals-org")
    emulator.create_repository("evals-org", "mlflow", files={"README.md": "hi\n"})
    installation = emulator.install_app("evals-org", repositories="all")
    settings = make_settings(
        app_id=app.id,
        private_key=app.private_key_pem,
        webhook_secret="s",
        github_api_url=emulator.url,
        redis_url=redis_url,
    )
    yield type("World", (), {"emu": emulator, "app": app, "installation": installation, "settings": settings})
    assert not emulator.server_errors


def token_posts(emu) -> list:
    return [r for r in emu.requests if r.operation_id == TOKEN_POST]


def bearer(request) -> str:
    return request.headers["authorization"].split(" ", 1)[1]


def test_the_app_jwt_is_rs256_issued_a_minute_ago_and_valid_for_under_ten_minutes(world, redis_conn):
    before = int(time.time())
    client = GitHubApp(world.settings, redis_conn).as_app()
    assert client.rest.apps.get_authenticated().parsed_data.id == world.app.id
    after = int(time.time())

    [request] = [r for r in world.emu.requests if r.operation_id == "apps/get-authenticated"]
    assert request.token_kind == "jwt" and request.status == 200
    token = bearer(request)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, world.app.public_key, algorithms=["RS256"], options={"verify_exp": True})
    assert str(claims["iss"]) == str(world.app.id)
    assert before - 60 <= claims["iat"] <= after - 60
    assert claims["exp"] - claims["iat"] < 600
    assert claims["exp"] > after + 60  # minutes to live, not seconds


def test_installation_tokens_are_minted_once_for_every_process_and_cached_in_redis(world, redis_url):
    # Two workers: separate GitHubApp objects, separate Redis connections, one Redis.
    first = GitHubApp(world.settings, queue.connect(redis_url)).as_installation(world.installation.id)
    second = GitHubApp(world.settings, queue.connect(redis_url)).as_installation(world.installation.id)
    assert first.rest.repos.get("evals-org", "mlflow").status_code == 200
    assert second.rest.repos.get("evals-org", "mlflow").status_code == 200
    assert first.rest.repos.get("evals-org", "mlflow").status_code == 200

    [minted] = token_posts(world.emu)
    assert minted.token_kind == "jwt" and minted.status == 201
    reads = [r for r in world.emu.requests if r.operation_id == "repos/get"]
    assert len(reads) == 3 and len({bearer(r) for r in reads}) == 1
    token = bearer(reads[0])

    # The token sits in Redis, to be dropped a few minutes before GitHub's 1-hour expiry.
    connection = queue.connect(redis_url)
    [key] = [k for k in connection.scan_iter("tandem:*installation*") if connection.get(k) == token.encode()]
    ttl = connection.ttl(key)
    assert 3600 - 10 * 60 <= ttl <= 3600 - 3 * 60, ttl


def test_the_clients_of_a_process_share_their_connections_to_github(world, redis_url):
    # A client made per job, and by githubkit per request, each opened a connection (and loaded
    # an SSL context: a third of a vote's processing time).
    port = int(world.emu.url.rsplit(":", 1)[1])
    with TcpProxy("127.0.0.1", port) as proxy:
        settings = world.settings.model_copy(update={"github_api_url": f"http://127.0.0.1:{proxy.port}"})
        for _ in range(2):
            client = GitHubApp(settings, queue.connect(redis_url)).as_installation(world.installation.id)
            assert client.rest.repos.get("evals-org", "mlflow").status_code == 200
            assert client.rest.repos.get("evals-org", "mlflow").status_code == 200
        assert len(token_posts(world.emu)) == 1
        assert proxy.carried == 1


@pytest.mark.parametrize("bypassed", [False, True])
def test_requests_to_github_go_through_the_environments_proxy_unless_no_proxy_names_it(
    world, redis_url, monkeypatch, bypassed
):
    # A deployment reaching GitHub through an egress proxy: a shared transport made httpx ignore
    # HTTP(S)_PROXY / ALL_PROXY / NO_PROXY. The proxy forwards the absolute-form request as is
    # (uvicorn reads its path), so every connection it carried went through it.
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    port = int(world.emu.url.rsplit(":", 1)[1])
    with TcpProxy("127.0.0.1", port) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        if bypassed:
            monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
        client = GitHubApp(world.settings, queue.connect(redis_url)).as_installation(world.installation.id)
        assert client.rest.repos.get("evals-org", "mlflow").status_code == 200
        assert (proxy.carried == 0) if bypassed else (proxy.carried >= 1)


def test_a_revoked_token_is_replaced_on_401_and_the_new_one_is_shared(world, redis_url):
    client = GitHubApp(world.settings, queue.connect(redis_url)).as_installation(world.installation.id)
    assert client.rest.repos.get("evals-org", "mlflow").status_code == 200
    assert world.emu.revoke_installation_tokens() == 1

    # The same client object (nothing of the old token kept in memory) recovers at once.
    assert client.rest.repos.get("evals-org", "mlflow").status_code == 200
    statuses = [r.status for r in world.emu.requests if r.operation_id == "repos/get"]
    assert statuses == [200, 401, 200]
    assert len(token_posts(world.emu)) == 2

    # Another process picks up the new token from Redis: no third token.
    other = GitHubApp(world.settings, queue.connect(redis_url)).as_installation(world.installation.id)
    assert other.rest.repos.get("evals-org", "mlflow").status_code == 200
    assert len(token_posts(world.emu)) == 2
    first, second = [r for r in world.emu.requests if r.operation_id == "repos/get" and r.status == 200][-2:]
    assert bearer(first) == bearer(second)


def test_a_second_401_is_not_retried_forever(world, redis_conn):
    client = GitHubApp(world.settings, redis_conn).as_installation(world.installation.id)
    client.rest.repos.get("evals-org", "mlflow")
    world.emu.uninstall_app(world.installation.id)  # its tokens answer 401, no new one is issued
    world.emu.reset_requests()
    with pytest.raises(Exception):  # noqa: B017 (githubkit's error, whichever it is)
        client.rest.repos.get("evals-org", "mlflow")
    assert len(world.emu.requests) <= 3


def test_a_ghes_api_url_with_a_path_prefix(world, redis_conn):
    """GitHub Enterprise Server serves the API at https://HOST/api/v3 and its web pages at
    https://HOST: a proxy gives the emulator that shape."""
    proxy = LoopbackProxy(world.emu.url, strip_prefix="/api/v3")
    with LiveServer(proxy) as server:
        settings = world.settings.model_copy(update={"github_api_url": f"{server.url}/api/v3"})
        assert settings.web_url == server.url
        github = GitHubApp(settings, redis_conn)
        app_client = github.as_app()
        assert app_client.rest.apps.get_authenticated().parsed_data.id == world.app.id
        client = github.as_installation(world.installation.id)
        assert client.rest.repos.get("evals-org", "mlflow").parsed_data.full_name == "evals-org/mlflow"
        assert github.installation_token(world.installation.id).startswith("ghs_")
        deliveries = app_client.request("GET", "/app/hook/deliveries").json()
        assert deliveries
    paths = {path for _method, path in proxy.seen}
    assert "/api/v3/app" in paths
    assert f"/api/v3/app/installations/{world.installation.id}/access_tokens" in paths
    assert "/api/v3/repos/evals-org/mlflow" in paths
    assert "/api/v3/app/hook/deliveries" in paths
    assert all(path.startswith("/api/v3/") for path in paths)
    # The JWT went to the app's routes under the prefix, the token to the rest.
    kinds = {(r.path, r.token_kind) for r in world.emu.requests}
    assert ("/app", "jwt") in kinds and ("/repos/evals-org/mlflow", "installation") in kinds


@pytest.mark.parametrize(
    ("api_url", "web_url"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.octocorp.ghe.com", "https://octocorp.ghe.com"),
        ("https://github.example.com/api/v3", "https://github.example.com"),
        ("https://github.example.com/api/v3/", "https://github.example.com"),
    ],
)
def test_the_web_url_is_derived_from_the_api_url(api_url, web_url):
    assert Settings(_env_file=None, github_api_url=api_url).web_url == web_url


def test_the_retry_after_a_401_is_immediate(world, redis_conn):
    """githubkit sleeps 60 s when a retry decision's delay is zero (falsy): a refresh on 401 must
    come with a small positive delay, or every revoked token stalls a worker for a minute."""
    from githubkit import GitHub
    from githubkit.exception import RequestFailed

    from tandem.infra.github import RetryPolicy

    github = GitHubApp(world.settings, redis_conn)
    token = github.installation_token(world.installation.id)
    world.emu.revoke_installation_tokens()
    plain = GitHub(token, base_url=world.emu.url, auto_retry=False, http_cache=False)
    with pytest.raises(RequestFailed) as refused:
        plain.rest.repos.get("evals-org", "mlflow")
    dropped = []
    decision = RetryPolicy(3, drop_token=lambda: dropped.append(1))(refused.value, 0)
    assert decision.do_retry and dropped == [1]
    assert decision.retry_after and 0 < decision.retry_after.total_seconds() < 1


def test_the_token_handed_to_git_is_the_cached_one_and_a_fresh_one_when_asked(world, redis_conn):
    """git is handed the token the API clients use, with no request to check it (one per pair);
    when GitHub refuses it, git asks for a fresh one (tests/test_gitops.py), minted with one
    request and cached for the API clients too."""
    github = GitHubApp(world.settings, redis_conn)
    first = github.installation_token(world.installation.id)
    requests = len(world.emu.requests)
    assert github.installation_token(world.installation.id) == first
    assert (len(world.emu.requests), len(token_posts(world.emu))) == (requests, 1)
    world.emu.revoke_installation_tokens()
    second = github.installation_token(world.installation.id, fresh=True)
    assert second != first and len(world.emu.requests) == requests + 1
    answer = httpx.get(f"{world.emu.url}/repos/evals-org/mlflow", headers={"Authorization": f"token {second}"})
    assert answer.status_code == 200
    # The API clients take the new token from the cache: no further token is minted.
    github.as_installation(world.installation.id).rest.repos.get("evals-org", "mlflow")
    assert len(token_posts(world.emu)) == 2
