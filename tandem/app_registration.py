"""Registering the GitHub App from app.yml (GitHub's manifest flow, as Probot does it).

1. The setup page posts the manifest to GitHub, for a personal account or an organization.
2. GitHub redirects back with a one-time code; we exchange it through
   POST /app-manifests/{code}/conversions for the app's id, private key and webhook secret.
3. Those go into the .env file (the key into its own file, mode 0600), and setup is over.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from urllib.parse import quote

import redis
import yaml
from githubkit import GitHub
from githubkit.exception import GitHubException

from tandem.errors import TandemError
from tandem.settings import Settings

MANIFEST_FILE = Path(__file__).parents[1] / "app.yml"
STATE_TTL = 3600  # GitHub's codes live an hour too
_STATE_KEY = "tandem:setup:state:{}"


def manifest(settings: Settings) -> dict:
    data = yaml.safe_load(MANIFEST_FILE.read_text())
    data["hook_attributes"] = {**data.get("hook_attributes", {}), "url": f"{settings.public_url}/webhooks/github"}
    data["redirect_url"] = f"{settings.public_url}/setup/callback"
    return data


def registration_url(settings: Settings, organization: str | None) -> str:
    """Where the browser posts the manifest: the account's or the organization's new-app page."""
    if organization:
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", organization):
            raise TandemError(f"{organization!r} is not a GitHub organization name")
        return f"{settings.web_url}/organizations/{quote(organization)}/settings/apps/new"
    return f"{settings.web_url}/settings/apps/new"


def new_state(connection: redis.Redis) -> str:
    state = secrets.token_urlsafe(24)
    connection.set(_STATE_KEY.format(state), 1, ex=STATE_TTL)
    return state


def consume_state(connection: redis.Redis, state: str) -> bool:
    """True once for a state this server issued (guards the callback against forged requests)."""
    return bool(state) and connection.delete(_STATE_KEY.format(state)) == 1


def complete(settings: Settings, code: str) -> dict:
    """Exchange the code and write the credentials; returns the app GitHub created."""
    github = GitHub(base_url=settings.github_api_url, user_agent="Tandem", auto_retry=False, http_cache=False)
    try:
        response = github.request("POST", f"/app-manifests/{quote(code, safe='')}/conversions")
    except GitHubException as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        raise TandemError(
            f"GitHub did not accept the registration code (HTTP {status}); it may have expired: start again at /setup"
            if status
            else f"GitHub at {settings.github_api_url} cannot be reached"
        ) from None
    app = response.json()
    write_credentials(settings.env_file, app_id=app["id"], pem=app["pem"], webhook_secret=app["webhook_secret"])
    return app


def write_credentials(env_file: Path, *, app_id: int, pem: str, webhook_secret: str) -> None:
    key_file = env_file.with_name("tandem-private-key.pem")
    _write_private(key_file, pem)
    values = {
        "TANDEM_APP_ID": str(app_id),
        "TANDEM_PRIVATE_KEY_PATH": str(key_file.resolve()),
        "TANDEM_WEBHOOK_SECRET": webhook_secret,
    }
    kept = []
    if env_file.exists():
        kept = [line for line in env_file.read_text().splitlines() if line.split("=", 1)[0].strip() not in values]
    _write_private(env_file, "\n".join([*kept, *(f"{k}={v}" for k, v in values.items())]) + "\n")


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, without a moment in which others could."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


def is_registered(settings: Settings) -> bool:
    """Credentials in this process, or written to the .env file by another process's setup."""
    if settings.has_credentials:
        return True
    if not settings.env_file.exists():
        return False
    names = {line.split("=", 1)[0].strip() for line in settings.env_file.read_text().splitlines()}
    return {"TANDEM_APP_ID", "TANDEM_WEBHOOK_SECRET"} <= names
