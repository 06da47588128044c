"""GitHub clients for the app and its installations, built on githubkit.

Installation tokens are cached in Redis and shared by every process (githubkit's cache
strategy), ending a few minutes before GitHub's expiry; a 401 drops the cached token and
retries once. Rate-limit answers are honoured: a short wait is slept in place, a long one
is raised as RateLimited so the job is rescheduled instead of holding a worker.
Content-creating requests to one installation share one write budget (tandem.budget).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

import redis
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.cache.redis import RedisCache, RedisCacheStrategy
from githubkit.exception import RateLimitExceeded, RequestError, RequestFailed
from githubkit.typing import RetryOption

from tandem.budget import WriteBudget
from tandem.errors import ConfigError, RateLimited, TandemError
from tandem.settings import Settings

CACHE_PREFIX = "tandem:githubkit"
# GitHub's installation tokens live an hour; stop using a cached one this long before.
TOKEN_EXPIRY_MARGIN = timedelta(minutes=4)
SERVER_ERROR_BACKOFF = (1.0, 2.0, 4.0)


class _TokenCache(RedisCache):
    """githubkit's Redis cache, with installation tokens expiring a few minutes early."""

    def set(self, key: str, value: str, ex: timedelta) -> None:
        if ":installation:" in key:
            ex = max(ex - TOKEN_EXPIRY_MARGIN, timedelta(seconds=1))
        super().set(key, value, ex)

    def delete(self, key: str) -> None:
        self.client.delete(self._get_key(key))


class _CacheStrategy(RedisCacheStrategy):
    def get_cache_storage(self) -> _TokenCache:
        return _TokenCache(self.client, self.prefix)


def retry_after(exc: RequestFailed) -> float:
    """Seconds GitHub asked us to wait, from Retry-After or X-RateLimit-Reset (60 s if neither)."""
    if isinstance(exc, RateLimitExceeded):
        return exc.retry_after.total_seconds()
    header = exc.response.raw_response.headers.get("retry-after")
    return float(header) if header and header.isdigit() else 60.0


class RetryPolicy:
    """githubkit's auto_retry: what to do when a request to GitHub fails."""

    def __init__(self, max_inline_wait: float, drop_token: Callable[[], None] | None = None):
        self.max_inline_wait = max_inline_wait
        self.drop_token = drop_token

    def __call__(self, exc, retry_count: int) -> RetryOption:
        if isinstance(exc, RequestFailed):
            status = exc.response.status_code
            if isinstance(exc, RateLimitExceeded) or status == 429:
                return self._rate_limited(exc, retry_count)
            if status == 401 and self.drop_token is not None and retry_count == 0:
                # The cached token was revoked or expired early: fetch a fresh one, once.
                self.drop_token()
                return RetryOption(True, timedelta())
            if status >= 500:
                return self._backoff(retry_count)
            return RetryOption(False)
        if isinstance(exc, RequestError):  # connection refused, reset, timeout
            return self._backoff(retry_count)
        return RetryOption(False)

    def _rate_limited(self, exc: RequestFailed, retry_count: int) -> RetryOption:
        wait = retry_after(exc)
        if wait > self.max_inline_wait or retry_count >= 3:
            raise RateLimited(wait, f"GitHub ({exc.response.status_code} on {exc.request.method} {exc.request.url.path})")
        return RetryOption(True, timedelta(seconds=wait))

    @staticmethod
    def _backoff(retry_count: int) -> RetryOption:
        if retry_count >= len(SERVER_ERROR_BACKOFF):
            return RetryOption(False)
        jitter = random.uniform(0.5, 1.0)  # noqa: S311 (spreading retries, not security)
        return RetryOption(True, timedelta(seconds=SERVER_ERROR_BACKOFF[retry_count] * jitter))


class GitHubApp:
    """Makes clients acting as the app (JWT) or as one of its installations (installation token)."""

    def __init__(self, settings: Settings, connection: redis.Redis):
        self.settings = settings
        self.redis = connection
        self._cache = _CacheStrategy(connection, prefix=CACHE_PREFIX)
        self._pem: str | None = None

    @property
    def app_id(self) -> int:
        if not self.settings.app_id:
            raise ConfigError("TANDEM_APP_ID: not set; run the setup flow at /setup")
        return self.settings.app_id

    def _private_key(self) -> str:
        if self._pem is None:
            self._pem = self.settings.private_key_pem()
        return self._pem

    def _client(self, auth, *, drop_token=None, throttler=None) -> GitHub:
        return GitHub(
            auth,
            base_url=self.settings.github_api_url,
            user_agent="Tandem",
            cache_strategy=self._cache,
            http_cache=False,
            auto_retry=RetryPolicy(self.settings.max_inline_wait_seconds, drop_token),
            throttler=throttler,
            timeout=30,
        )

    def as_app(self) -> GitHub:
        return self._client(AppAuthStrategy(self.app_id, self._private_key()))

    def as_installation(self, installation_id: int) -> GitHub:
        auth = AppInstallationAuthStrategy(self.app_id, self._private_key(), installation_id)
        client: GitHub

        def drop_token() -> None:
            flow = auth.get_auth_flow(client)
            self._cache.get_cache_storage().delete(flow._get_installation_cache_key())

        budget = WriteBudget(
            self.redis,
            key=f"tandem:writes:{installation_id}",
            spacing=self.settings.write_spacing_seconds,
            per_minute=self.settings.writes_per_minute,
            per_hour=self.settings.writes_per_hour,
            max_wait=self.settings.max_inline_wait_seconds,
        )
        client = self._client(auth, drop_token=drop_token, throttler=budget)
        return client

    def installation_token(self, installation_id: int) -> str:
        """A (cached) installation access token, for git over HTTPS."""
        client = self.as_installation(installation_id)
        flow = client.auth.get_auth_flow(client)
        cache = self._cache.get_cache_storage()
        token = cache.get(flow._get_installation_cache_key())
        if token:
            return token
        # Any installation request fills the cache; /rate_limit is free and does not count.
        client.rest.rate_limit.get()
        token = cache.get(flow._get_installation_cache_key())
        if not token:
            raise TandemError(f"GitHub did not issue a token for installation {installation_id}")
        return token
