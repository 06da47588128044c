"""Configuration from TANDEM_* environment variables and an optional .env file.

Secrets are SecretStr so they never show in a repr, a log line or a traceback.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tandem.infra.errors import ConfigError

ENV_PREFIX = "TANDEM_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore")

    app_id: int | None = None
    private_key: SecretStr | None = None
    private_key_path: Path | None = None
    webhook_secret: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    # Where people register and install the app (github.com, or the GHES host).
    github_url: str | None = None
    database_url: str = "sqlite:///tandem.db"
    redis_url: str = "redis://localhost:6379/0"
    # The address GitHub and browsers reach this server at (for the manifest's webhook URL). By
    # default the local address of `tandem serve`, whose port PORT sets (scripts/start, Docker).
    public_url: str = Field(default_factory=lambda: f"http://localhost:{os.environ.get('PORT') or 8000}")
    env_file: Path = Path(".env")
    git_cache_dir: Path = Path("var/git")
    # Content-creating requests per installation. GitHub asks for about a second between them and
    # refuses more than 80 a minute or 500 an hour. It counts them when they arrive, and a write
    # can arrive later than its slot (a token minted first, a slow connection), so the budget keeps
    # a margin: 60 a minute (GitHub's one a second; 20 writes, 20 s of delay, to spare) and 450 an
    # hour (50 writes to spare at the hour's edge, where sustained load keeps the budget full).
    write_spacing_seconds: float = Field(default=1.0, ge=0)
    writes_per_minute: int = Field(default=60, gt=0)
    writes_per_hour: int = Field(default=450, gt=0)
    # The longest a job sleeps in place for a rate limit before it is rescheduled instead.
    max_inline_wait_seconds: float = Field(default=10.0, ge=0)
    # A pair's labels and check runs are brought up to date at most once this often: one update
    # shows every vote of the window (tandem.infra.outbox), so a burst of votes costs two writes, not
    # two per vote. The acknowledgement reaction is never delayed.
    pair_sync_window_seconds: float = Field(default=10.0, gt=0)
    # Seconds between a failed job's tries (RQ Retry): about 20 minutes of tries in all.
    job_retry_intervals: list[int] = [5, 15, 60, 120, 300, 600]
    # A job that finds Redis or the database unreachable waits this long, doubling up to the cap,
    # for as long as the outage lasts; those waits spend none of its retries (tandem.infra.outages).
    outage_wait_seconds: float = Field(default=5.0, gt=0)
    outage_max_wait_seconds: float = Field(default=300.0, gt=0)
    log_level: str = "INFO"
    # One line per event: key=value pairs (kv, for people) or JSON (json, for log collectors).
    log_format: Literal["kv", "json"] = "kv"
    # How long a client may take to send a whole request (app.limits), before it is cut off.
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    # The team's model runner, if it wants outgoing webhooks (tandem.domain.runner_events): the URL they
    # are POSTed to, and the secret their X-Tandem-Signature-256 is made with.
    runner_url: str | None = None
    runner_secret: SecretStr | None = None
    # The GitHub App's OAuth client (from the manifest conversion), for "Sign in with GitHub" on
    # the dashboard; and the teams ("org/team") whose members may sign in to it (app.dashboard).
    client_id: str | None = None
    client_secret: SecretStr | None = None
    dashboard_teams: list[str] = []
    # The GitHub logins who see the dashboard's queue health (every team's dead letters and
    # installations) and may retry deliveries and jobs: the people who run this server.
    dashboard_operators: list[str] = []

    @field_validator("github_api_url", "public_url", "github_url", "runner_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @property
    def web_url(self) -> str:
        """Where GitHub's pages and git are: github.com for api.github.com (an API on a host of its
        own, api.HOST, as on github.com and GHE.com, is HOST's); https://HOST for a GHES API at
        https://HOST/api/v3."""
        if self.github_url:
            return self.github_url
        parts = urlsplit(self.github_api_url)
        if parts.path.strip("/") == "" and parts.netloc.startswith("api."):
            return f"{parts.scheme}://{parts.netloc.removeprefix('api.')}"
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def has_credentials(self) -> bool:
        return bool(self.app_id and self.webhook_secret and (self.private_key or self.private_key_path))

    def private_key_pem(self) -> str:
        """The app's private key, from TANDEM_PRIVATE_KEY or the file TANDEM_PRIVATE_KEY_PATH."""
        if self.private_key is not None:
            pem = self.private_key.get_secret_value().replace("\\n", "\n")
            name = "TANDEM_PRIVATE_KEY"
        elif self.private_key_path is not None:
            name = "TANDEM_PRIVATE_KEY_PATH"
            try:
                pem = self.private_key_path.read_text()
            except FileNotFoundError:
                raise ConfigError(f"{name}: no file at {self.private_key_path}") from None
            except OSError as exc:
                raise ConfigError(f"{name}: cannot read {self.private_key_path} ({exc.strerror})") from None
        else:
            raise ConfigError(
                "TANDEM_PRIVATE_KEY_PATH: not set (nor TANDEM_PRIVATE_KEY); run `tandem setup` "
                "or set it to the app's .pem file"
            )
        _check_rsa_key(pem, name)
        return pem


def _check_rsa_key(pem: str, name: str) -> None:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{name}: not a PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(f"{name}: GitHub App keys are RSA; this key is not")


def load_settings(**overrides) -> Settings:
    """Settings, or a ConfigError naming each bad variable (never its value).

    The .env file read is TANDEM_ENV_FILE's (default ./.env): the one the setup flow writes.
    """
    env_file = os.environ.get(f"{ENV_PREFIX}ENV_FILE", ".env")
    # Secret files (Docker's /run/secrets): a file per setting, named like its variable in lower case.
    secrets_dir = os.environ.get(f"{ENV_PREFIX}SECRETS_DIR") or None
    try:
        return Settings(_env_file=env_file, _secrets_dir=secrets_dir, **overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            problems.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}")
        raise ConfigError("; ".join(problems)) from None


@functools.cache
def get_settings() -> Settings:
    return load_settings()
