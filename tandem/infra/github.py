"""GitHub clients for the app and its installations, built on githubkit.

Authentication: the app's JWT (RS256, issued 60 s in the past to allow for clock drift, valid
for 9 minutes, under GitHub's 10-minute limit) and its installation tokens are cached in Redis
(githubkit's cache strategy), so every process shares them and nothing is held in process memory:
an installation token is minted once for all workers and dropped from the cache a few minutes
before GitHub's expiry. A 401 drops the cached token and JWT, and the request is sent again once.

Faults (RetryPolicy): rate-limit answers are honoured (a short wait is slept in place, a long
one raises RateLimited so the job is rescheduled instead of holding a worker), and hold the whole
installation until the wait is over, for every job and process (tandem.infra.budget); 5xx answers and
connection failures are retried with back-off, except for content-creating POSTs that may have
taken effect before the error (GitHub can create a PR and still answer 502): those fail the try,
and the job's retry, which looks up what a previous try created, takes over.
Content-creating requests to one installation share one write budget (tandem.infra.budget).

Every response is logged at debug level (method, path, status, the rate limit left) and counted
in the metrics; never a header, a query string or a body: they are where tokens travel.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import redis
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.auth.app import AppAuth
from githubkit.cache.redis import RedisCache, RedisCacheStrategy
from githubkit.exception import (
    GitHubException,
    PrimaryRateLimitExceeded,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)
from githubkit.typing import RetryOption

from tandem.infra import metrics, redis_keys
from tandem.infra.budget import WriteBudget, is_graphql_query
from tandem.infra.errors import ConfigError, RateLimited, TandemError
from tandem.infra.settings import Settings

log = logging.getLogger(__name__)
# GitHub's installation tokens live an hour; stop using a cached one this long before.
TOKEN_EXPIRY_MARGIN = timedelta(minutes=4)
# The app's JWT: issued a minute in the past (GitHub's advice against clock drift), expiring
# JWT_EXPIRES_IN from now (9 minutes after `iat`: GitHub refuses more than 10), and reused from
# the cache for JWT_CACHE_TTL, so a cached one still has minutes to live when it is sent.
JWT_BACKDATE = timedelta(seconds=60)
JWT_EXPIRES_IN = timedelta(minutes=8)
JWT_CACHE_TTL = timedelta(minutes=5)
SERVER_ERROR_BACKOFF = (1.0, 2.0, 4.0)
# A request is retried in place at most this many times in all (githubkit counts every retry);
# GitHub saying "wait" after that reschedules the job (RateLimited), however short the wait.
MAX_INLINE_RATE_LIMIT_RETRIES = 3
# A 401 on a request's first attempt fetches a fresh token (and JWT) and retries; a 401 after
# that means the credentials themselves are refused, and is raised.
MAX_AUTH_RETRIES = 1
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
# POSTs that are safe to send twice: minting a token, redelivering a webhook (processing is
# idempotent), adding labels, reactions and requested reviewers (GitHub keeps one of each), and
# GraphQL queries (they only read).
_SAFE_POST = re.compile(r"/(access_tokens|attempts|labels|reactions|requested_reviewers)$")
_NO_WAIT = timedelta(milliseconds=10)
# Connection failures that mean the request never reached GitHub.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class _TokenCache(RedisCache):
    """githubkit's Redis cache, with installation tokens expiring a few minutes early."""

    def set(self, key: str, value: str, ex: timedelta) -> None:
        if ":installation:" in key:
            ex = ex - TOKEN_EXPIRY_MARGIN
        if ex <= timedelta(seconds=1):
            return  # (nearly) expired already: not worth caching
        super().set(key, value, ex)

    def delete(self, key: str) -> None:
        self.client.delete(self._get_key(key))


class _CacheStrategy(RedisCacheStrategy):
    def get_cache_storage(self) -> _TokenCache:
        return _TokenCache(self.client, self.prefix)


@dataclass
class _AppAuth(AppAuth):
    """githubkit's app authentication with Tandem's JWT lifetime and cache time."""

    def _create_jwt(self) -> str:
        import jwt

        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "iat": now - int(JWT_BACKDATE.total_seconds()),
            "exp": now + int(JWT_EXPIRES_IN.total_seconds()),
        }
        return jwt.encode(claims, self.private_key, algorithm="RS256")

    def get_jwt(self) -> str:
        cache = self.github.config.cache_strategy.get_cache_storage()
        key = self._get_jwt_cache_key()
        if not (token := cache.get(key)):
            token = self._create_jwt()
            cache.set(key, token, JWT_CACHE_TTL)
        return token


def _flow_args(
    strategy: AppAuthStrategy | AppInstallationAuthStrategy,
) -> tuple[str | int | None, str, str | None, str | None]:
    return (strategy.app_id, strategy.private_key, strategy.client_id, strategy.client_secret)


@dataclass
class _AppStrategy(AppAuthStrategy):
    def get_auth_flow(self, github) -> _AppAuth:
        return _AppAuth(github, *_flow_args(self))


@dataclass
class _InstallationStrategy(AppInstallationAuthStrategy):
    def get_auth_flow(self, github) -> _AppAuth:
        return _AppAuth(
            github, *_flow_args(self), self.installation_id, self.repositories, self.repository_ids, self.permissions
        )


def retry_after(exc: RequestFailed) -> float:
    """Seconds GitHub asked us to wait: Retry-After, else until X-RateLimit-Reset, else 60 s."""
    headers = exc.response.raw_response.headers
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    reset = headers.get("x-ratelimit-reset", "").strip()
    if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return max(float(reset) - time.time(), 0.0)
    if isinstance(exc, RateLimitExceeded):
        return exc.retry_after.total_seconds()
    return 60.0


def _is_rate_limited(exc: RequestFailed) -> bool:
    """403/429 answers that say "wait", including a secondary limit with no header (GitHub's
    docs: wait a minute then)."""
    if isinstance(exc, RateLimitExceeded) or exc.response.status_code == 429:
        return True
    if exc.response.status_code != 403:
        return False
    try:
        message = str(exc.response.raw_response.json().get("message", ""))
    except (ValueError, AttributeError):
        return False
    return "rate limit" in message.lower()


def _request_of(exc: GitHubException) -> httpx.Request | None:
    if isinstance(exc, RequestFailed | RequestTimeout):
        return exc.request
    if not isinstance(exc, RequestError):
        return None
    try:
        return exc.exc.request  # RequestError wrapping an httpx error
    except (AttributeError, RuntimeError):  # not an httpx error, or one sent with no request
        return None


def _safe_to_repeat(request: httpx.Request | None) -> bool:
    """Sending this request again cannot create a second thing on GitHub."""
    if request is None:
        return False
    return (
        request.method in IDEMPOTENT_METHODS or bool(_SAFE_POST.search(request.url.path)) or is_graphql_query(request)
    )


def log_response(response: httpx.Response) -> None:
    """httpx's response hook, for every request of Tandem's GitHub clients."""
    request = response.request
    metrics.GITHUB_REQUESTS.labels(request.method, str(response.status_code)).inc()
    log.debug(
        "GitHub request",
        extra={
            "method": request.method,
            "path": request.url.path,
            "status": response.status_code,
            "rate_limit_remaining": response.headers.get("x-ratelimit-remaining"),
        },
    )


class _SharedTransport(httpx.HTTPTransport):
    """The process's one connection pool to GitHub. githubkit builds an httpx client per request
    (outside `with client:`), and each built its own transport: an SSL context loaded afresh
    (about 10 ms of CPU, a third of a vote's processing) and a new connection every time. The
    clients close their transport after each request; this one outlives them."""

    def close(self) -> None:
        pass


_shared: tuple[int, dict[str | None, _SharedTransport]] = (0, {})


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY), as
    httpx reads them for a client it builds a transport for; it ignores them once given one."""
    target = httpx.URL(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(target.host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def shared_transport(url: str) -> _SharedTransport:
    """The process's transport to `url`, direct or through its proxy; a forked child makes its own
    (its parent's sockets are not its to use). The environment is read per client, as httpx did."""
    global _shared
    if _shared[0] != os.getpid():
        _shared = (os.getpid(), {})
    proxy = environment_proxy(url)
    transports = _shared[1]
    if proxy not in transports:
        transports[proxy] = _SharedTransport(proxy=proxy)
    return transports[proxy]


class RetryPolicy:
    """githubkit's auto_retry: what to do when a request to GitHub fails.

    githubkit calls it with the exception and the number of retries this request already had;
    it answers whether (and after how long) to retry in place, or raises RateLimited when the
    wait is too long to sleep through.
    """

    def __init__(
        self,
        max_inline_wait: float,
        drop_token: Callable[[], None] | None = None,
        budget: WriteBudget | None = None,
    ):
        self.max_inline_wait = max_inline_wait
        self.drop_token = drop_token
        self.budget = budget

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        # A failed token request (made inside the auth flow) reaches us wrapped in a RequestError.
        if type(exc) is RequestError and isinstance(exc.exc, GitHubException):
            exc = exc.exc
        if isinstance(exc, RequestFailed):
            status = exc.response.status_code
            if status in (403, 429) and _is_rate_limited(exc):
                return self._rate_limited(exc, retry_count)
            if status == 401:
                return self._refresh(retry_count)
            if status >= 500 and _safe_to_repeat(exc.request):
                return self._backoff(retry_count)
            return RetryOption(False)
        # A connection refused, reset or timed out.
        if isinstance(exc, RequestError) and (isinstance(exc.exc, _NOT_SENT) or _safe_to_repeat(_request_of(exc))):
            return self._backoff(retry_count)
        return RetryOption(False)

    def _refresh(self, retry_count: int) -> RetryOption:
        """The cached token (or JWT) was revoked or expired early: fetch fresh ones and retry."""
        if self.drop_token is None or retry_count >= MAX_AUTH_RETRIES:
            return RetryOption(False)
        self.drop_token()
        return RetryOption(True, _NO_WAIT)

    def _rate_limited(self, exc: RequestFailed, retry_count: int) -> RetryOption:
        wait = retry_after(exc)
        if self.budget is not None:  # the limit is the installation's, not this job's
            self.budget.hold(exc.request, wait, primary=isinstance(exc, PrimaryRateLimitExceeded))
        if wait > self.max_inline_wait or retry_count >= MAX_INLINE_RATE_LIMIT_RETRIES:
            what = f"GitHub ({exc.response.status_code} on {exc.request.method} {exc.request.url.path})"
            metrics.RATE_LIMIT_WAITS.labels("rescheduled").inc()
            raise RateLimited(max(wait, 1.0), what)
        metrics.RATE_LIMIT_WAITS.labels("slept").inc()
        # githubkit sleeps 60 s when handed a zero delay: never hand it one.
        return RetryOption(True, max(timedelta(seconds=wait), _NO_WAIT))

    @staticmethod
    def _backoff(retry_count: int) -> RetryOption:
        if retry_count >= len(SERVER_ERROR_BACKOFF):
            return RetryOption(False)
        jitter = random.uniform(0.5, 1.0)
        return RetryOption(True, timedelta(seconds=SERVER_ERROR_BACKOFF[retry_count] * jitter))


class GitHubApp:
    """Makes clients acting as the app (JWT) or as one of its installations (installation token)."""

    def __init__(
        self, settings: Settings, connection: redis.Redis, *, budget_windows: tuple[float, float] = (60.0, 3600.0)
    ):
        self.settings = settings
        self.redis = connection
        # GitHub's minute and hour, as the write budget counts them (shorter in benchmarks).
        self.budget_windows = budget_windows
        self._cache = _CacheStrategy(connection, prefix=redis_keys.GITHUBKIT_CACHE)
        self._pem: str | None = None

    @property
    def app_id(self) -> int:
        if not self.settings.app_id:
            raise ConfigError("TANDEM_APP_ID: not set; run `tandem setup` (it prints a one-time setup link)")
        return self.settings.app_id

    def _private_key(self) -> str:
        if self._pem is None:
            self._pem = self.settings.private_key_pem()
        return self._pem

    def _client(self, auth, *, drop_token, budget: WriteBudget | None = None) -> GitHub:
        return GitHub(
            auth,
            base_url=self.settings.github_api_url,
            user_agent="Tandem",
            cache_strategy=self._cache,
            http_cache=False,
            auto_retry=RetryPolicy(self.settings.max_inline_wait_seconds, drop_token, budget),
            throttler=budget,
            timeout=30,
            transport=shared_transport(self.settings.github_api_url),
            event_hooks={"response": [log_response]},
        )

    def _drop(self, *keys: str) -> None:
        cache = self._cache.get_cache_storage()
        for key in keys:
            cache.delete(key)

    def as_app(self) -> GitHub:
        auth = _AppStrategy(self.app_id, self._private_key())
        client: GitHub

        def drop_jwt() -> None:
            self._drop(auth.get_auth_flow(client)._get_jwt_cache_key())

        client = self._client(auth, drop_token=drop_jwt)
        return client

    def as_installation(self, installation_id: int) -> GitHub:
        auth = _InstallationStrategy(self.app_id, self._private_key(), installation_id)
        client: GitHub

        def drop_token() -> None:
            flow = auth.get_auth_flow(client)
            self._drop(flow._get_installation_cache_key(), flow._get_jwt_cache_key())

        budget = WriteBudget(
            self.redis,
            installation_id=installation_id,
            spacing=self.settings.write_spacing_seconds,
            per_minute=self.settings.writes_per_minute,
            per_hour=self.settings.writes_per_hour,
            max_wait=self.settings.max_inline_wait_seconds,
            minute=self.budget_windows[0],
            hour=self.budget_windows[1],
        )
        client = self._client(auth, drop_token=drop_token, budget=budget)
        return client

    def installation_token(self, installation_id: int, *, fresh: bool = False) -> str:
        """The installation access token, for git over HTTPS: the one the API clients cached, or,
        with none cached or `fresh` (git was refused the cached one: revoked), a new one minted
        with one request and cached for the API clients too. Asking GitHub whether a cached token
        is still good cost a request per pair."""
        client = self.as_installation(installation_id)
        key = client.auth.get_auth_flow(client)._get_installation_cache_key()
        cache = self._cache.get_cache_storage()
        if not fresh and (token := cache.get(key)):
            return token
        app = self.as_app()  # held: its namespaces refer to it weakly
        minted = app.rest.apps.create_installation_access_token(installation_id).parsed_data
        expires = datetime.strptime(minted.expires_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if not minted.token:
            raise TandemError(f"GitHub did not issue a token for installation {installation_id}")
        # (githubkit's own margin: a token is dropped a minute before GitHub expires it)
        cache.set(key, minted.token, expires - datetime.now(UTC) - timedelta(minutes=1))
        return minted.token
