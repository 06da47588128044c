"""Registering the GitHub App from app.yml (GitHub's manifest flow, as Probot does it).

Whoever registers the app holds its webhook secret, so only the operator may:
0. `tandem setup` prints a one-time link; the browser that opens it gets a setup session (a
   cookie), and the link is spent. A session, not the network path, is what lets a browser in.
1. The setup page posts the manifest to GitHub, for a personal account or an organization, with a
   state bound to that session.
2. GitHub redirects back with a one-time code; the same browser session (and state) must hand it
   on, and we exchange it through POST /app-manifests/{code}/conversions for the app's id, private
   key and webhook secret.
3. Those go into the .env file (the key into its own file, mode 0600), and setup is over.

Only one registration can complete: the exchange and the writing happen under a Redis lock, after
checking that no credentials were written meanwhile (by another tab, person or web process).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import redis
import yaml
from githubkit import GitHub
from githubkit.exception import GitHubException, RequestFailed

from tandem.infra import redis_keys
from tandem.infra.errors import ServiceUnavailable, TandemError
from tandem.infra.settings import Settings

# Package data, so a wheel or the Docker image has it as well as a source checkout.
MANIFEST_FILE = resources.files("tandem") / "app.yml"
STATE_TTL = 3600  # GitHub's codes live an hour too
SETUP_LINK_TTL = 3600
SESSION_TTL = 3600
# GitHub's rule for account names: letters, digits and single hyphens inside, at most 39.
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
# What the setup writes; a stale value of any of them must not survive it.
_WRITTEN = (
    "TANDEM_APP_ID",
    "TANDEM_PRIVATE_KEY",
    "TANDEM_PRIVATE_KEY_PATH",
    "TANDEM_WEBHOOK_SECRET",
    "TANDEM_CLIENT_ID",
    "TANDEM_CLIENT_SECRET",
)


class AlreadyRegistered(TandemError):
    """Credentials were written by another registration while this one was under way."""


def manifest(settings: Settings, browser_origin: str) -> dict:
    """app.yml for this server; GitHub sends the browser back to the origin it set up from."""
    data = yaml.safe_load(MANIFEST_FILE.read_text())
    data["hook_attributes"] = {**data.get("hook_attributes", {}), "url": f"{settings.public_url}/webhooks/github"}
    data["redirect_url"] = f"{browser_origin}/setup/callback"
    # Where GitHub may send a browser back after "Sign in with GitHub" (the dashboard).
    data["callback_urls"] = [f"{settings.public_url}/dashboard/login/callback"]
    return data


def registration_url(settings: Settings, organization: str | None) -> str:
    """Where the browser posts the manifest: the account's or the organization's new-app page."""
    if organization is not None:
        if not organization:
            raise TandemError("name the organization to register the app for")
        if not _ACCOUNT_NAME.fullmatch(organization):
            raise TandemError(f"{organization!r} is not a GitHub organization name")
        return f"{settings.web_url}/organizations/{quote(organization)}/settings/apps/new"
    return f"{settings.web_url}/settings/apps/new"


def _digest(secret: str) -> str:
    # Redis holds digests only: reading its keys gives no usable link or session.
    return hashlib.sha256(secret.encode()).hexdigest()


def new_setup_link(settings: Settings, connection: redis.Redis) -> str:
    """A one-time link to the setup (`tandem setup`): the first browser to open it gets a session."""
    secret = secrets.token_urlsafe(32)
    connection.set(redis_keys.setup_link(_digest(secret)), 1, ex=SETUP_LINK_TTL)
    return f"{settings.public_url}/setup?key={secret}"


def open_session(connection: redis.Redis, link_secret: str) -> str | None:
    """Spend a setup link; returns the new browser session, or None for a spent or unknown link."""
    if not link_secret or connection.delete(redis_keys.setup_link(_digest(link_secret))) != 1:
        return None
    session = secrets.token_urlsafe(32)
    connection.set(redis_keys.setup_session(_digest(session)), 1, ex=SESSION_TTL)
    return session


def has_session(connection: redis.Redis, session: str | None) -> bool:
    if not session:
        return False
    return connection.exists(redis_keys.setup_session(_digest(session))) == 1


def close_session(connection: redis.Redis, session: str) -> None:
    connection.delete(redis_keys.setup_session(_digest(session)))


def new_state(connection: redis.Redis, session: str) -> str:
    state = secrets.token_urlsafe(24)
    connection.set(redis_keys.setup_state(_digest(session), state), 1, ex=STATE_TTL)
    return state


def consume_state(connection: redis.Redis, session: str, state: str) -> bool:
    """True once for a state this server issued to this browser session (guards the exchange
    against codes from anyone else's registration)."""
    return bool(state) and connection.delete(redis_keys.setup_state(_digest(session), state)) == 1


def restore_state(connection: redis.Redis, session: str, state: str) -> None:
    """Make a consumed state valid again (the exchange failed for a reason a retry can fix)."""
    connection.set(redis_keys.setup_state(_digest(session), state), 1, ex=STATE_TTL)


def complete(settings: Settings, code: str, connection: redis.Redis) -> dict:
    """Exchange the code and write the credentials; returns the app GitHub created.

    Raises AlreadyRegistered when credentials were written meanwhile, ServiceUnavailable when
    GitHub cannot be reached (the code may still be good), TandemError when it refuses the code.
    """
    with connection.lock(redis_keys.SETUP_LOCK, timeout=120, blocking_timeout=60):
        if is_registered(settings):
            raise AlreadyRegistered(
                "Tandem was registered by another setup meanwhile, so this registration was not used: "
                "delete the app you just created in GitHub's developer settings"
            )
        app = _convert(settings, code)
        write_credentials(
            settings.env_file,
            app_id=app["id"],
            pem=app["pem"],
            webhook_secret=app["webhook_secret"],
            client_id=app.get("client_id"),
            client_secret=app.get("client_secret"),
        )
    return app


def _convert(settings: Settings, code: str) -> dict:
    github = GitHub(
        base_url=settings.github_api_url, user_agent="Tandem", auto_retry=False, http_cache=False, timeout=30
    )
    try:
        response = github.request("POST", f"/app-manifests/{quote(code, safe='')}/conversions")
        app = response.json()
        if not (isinstance(app["id"], int) and app["pem"] and app["webhook_secret"]):
            raise ValueError("incomplete credentials")
    except RequestFailed as exc:
        status = exc.response.status_code
        if status >= 500:
            raise ServiceUnavailable(f"GitHub failed to answer (HTTP {status}); press Continue to try again") from None
        raise TandemError(
            f"GitHub did not accept the registration code (HTTP {status}): it was used already or has expired "
            "(codes last an hour); start again at /setup"
        ) from None
    except GitHubException:
        raise ServiceUnavailable(
            f"GitHub at {settings.github_api_url} cannot be reached; press Continue to try again"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise TandemError("GitHub's answer to the registration has no app credentials; start again at /setup") from None
    return app


def private_key_file(env_file: Path) -> Path:
    """Where the setup writes the app's private key: next to the .env file, in a file of its own."""
    return env_file.with_name("tandem-private-key.pem")


def write_credentials(
    env_file: Path,
    *,
    app_id: int,
    pem: str,
    webhook_secret: str,
    client_id: str | None = None,
    client_secret: str | None = None,
) -> None:
    """The app's credentials into the .env file; the OAuth client (for the dashboard's sign-in)
    too when GitHub gave one."""
    key_file = private_key_file(env_file)
    _write_private(key_file, pem)
    values = {
        "TANDEM_APP_ID": str(int(app_id)),
        "TANDEM_PRIVATE_KEY_PATH": _quoted(str(key_file.resolve())),
        "TANDEM_WEBHOOK_SECRET": _quoted(webhook_secret),
    }
    if client_id and client_secret:
        values |= {"TANDEM_CLIENT_ID": _quoted(client_id), "TANDEM_CLIENT_SECRET": _quoted(client_secret)}
    kept = []
    if env_file.exists():
        kept = [line for line in env_file.read_text().splitlines() if _name(line) not in _WRITTEN]
    _write_private(env_file, "\n".join([*kept, *(f"{k}={v}" for k, v in values.items())]) + "\n")


def _name(line: str) -> str:
    name = line.split("=", 1)[0].strip()
    return name.removeprefix("export ").strip()


def _quoted(value: str) -> str:
    """A .env value in double quotes (python-dotenv unescapes \\ and \")."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, without a moment in which others could."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def is_registered(settings: Settings) -> bool:
    """Credentials in this process, or written to the .env file by another process's setup."""
    if settings.has_credentials:
        return True
    if not settings.env_file.exists():
        return False
    names = {_name(line) for line in settings.env_file.read_text().splitlines()}
    return {"TANDEM_APP_ID", "TANDEM_WEBHOOK_SECRET"} <= names
