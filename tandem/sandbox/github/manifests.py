"""GitHub App registration: directly (``register_app``) or by the manifest flow.

Manifest flow on GitHub: the app's setup page POSTs a form with ``manifest``
(JSON) to ``/settings/apps/new`` (or ``/organizations/{org}/settings/apps/new``);
after the user confirms, GitHub registers the app and redirects to the
manifest's ``redirect_url`` with a temporary ``code``; the app trades the code
for its credentials with ``POST /app-manifests/{code}/conversions`` (no
authentication) within one hour, once.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from typing import TYPE_CHECKING

from . import errors
from .auth import generate_private_key
from .state import Account, App
from .util import iso, node_id, random_alnum

if TYPE_CHECKING:
    from .core import Core

CODE_LIFETIME = 3600
DEFAULT_OWNER = "app-developer"
DEFAULT_EVENTS = ["issue_comment", "pull_request", "pull_request_review", "pull_request_review_comment"]
DEFAULT_PERMISSIONS = {
    "metadata": "read",
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "checks": "write",
    "members": "read",
}


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def create_app(
    core: Core,
    *,
    slug: str | None,
    name: str,
    owner: Account | None,
    webhook_url: str | None,
    webhook_secret: str | None,
    events: list[str] | None,
    permissions: dict[str, str] | None,
    description: str | None = None,
    external_url: str | None = None,
) -> App:
    state = core.state
    slug = slug or slugify(name)
    if not slug:
        raise ValueError("app name gives an empty slug")
    with state.lock:
        if slug in state.apps_by_slug:
            raise ValueError(f"an app with slug {slug!r} exists")
        if owner is None:
            owner = state.account(DEFAULT_OWNER) or core.domain.create_account(DEFAULT_OWNER, "User")
        pem, public_key = generate_private_key()
        app_id = state.next_id("app")
        bot = core.domain.create_account(f"{slug}[bot]", "Bot")
        perms = dict(DEFAULT_PERMISSIONS if permissions is None else permissions)
        perms.setdefault("metadata", "read")
        app = App(
            id=app_id,
            slug=slug,
            name=name,
            node_id=node_id("Integration", app_id),
            owner=owner,
            client_id="Iv23li" + random_alnum(14),
            client_secret=secrets.token_hex(20),
            webhook_secret=webhook_secret,
            webhook_url=webhook_url,
            private_key_pem=pem,
            public_key=public_key,
            events=list(DEFAULT_EVENTS if events is None else events),
            permissions=perms,
            bot=bot,
            hook_id=state.next_id("hook"),
            description=description,
            external_url=external_url or "",
        )
        bot.app = app
        state.apps[app_id] = app
        state.apps_by_slug[slug] = app
        return app


class Manifests:
    def __init__(self, core: Core):
        self.core = core
        self._lock = threading.Lock()
        self._codes: dict[str, tuple[App, float]] = {}

    def create_code(self, manifest: dict, org: str | None = None, owner: str | None = None) -> tuple[str, App]:
        """Register the app a manifest describes; return (code, app)."""
        name = manifest.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("name can't be blank")
        state = self.core.state
        owner_acc = None
        if org is not None:
            owner_acc = state.account(org)
            if owner_acc is None or not owner_acc.is_org:
                raise ValueError(f"organization {org!r} not found")
        elif owner is not None:
            owner_acc = state.account(owner)
        hook = manifest.get("hook_attributes") or {}
        webhook_url = hook.get("url") if hook.get("active", True) else None
        app = create_app(
            self.core,
            slug=None,
            name=name.strip(),
            owner=owner_acc,
            webhook_url=webhook_url,
            webhook_secret=secrets.token_hex(20),
            events=list(manifest.get("default_events") or []),
            permissions=dict(manifest.get("default_permissions") or {}),
            description=manifest.get("description"),
            external_url=manifest.get("url"),
        )
        code = secrets.token_hex(20)
        with self._lock:
            self._codes[code] = (app, time.time() + CODE_LIFETIME)
        return code, app

    def convert(self, code: str) -> dict:
        with self._lock:
            entry = self._codes.pop(code, None)  # a code works once
        if entry is None or entry[1] < time.time():
            raise errors.not_found()
        app = entry[0]
        value = self.core.views.integration(app)
        value.update(
            {
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "webhook_secret": app.webhook_secret,
                "pem": app.private_key_pem,
                "created_at": app.created_at or iso(),
            }
        )
        return value
