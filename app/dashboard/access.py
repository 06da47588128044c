"""Who is looking at the dashboard, and what they may see.

Two ways in:
- a browser session, after "Sign in with GitHub": a member of a team in TANDEM_DASHBOARD_TEAMS
  ("org/team") gets the research role over the tasks of the Tandem team of that name (model
  names included); anyone else who signs in is a rater, who sees only their own statistics;
- an API token with the read scope (Authorization: Bearer), for read-only embeds: it sees its
  team's tasks, with model names only if it also has the export scope (as the API does).

The session is a cookie signed by Starlette's SessionMiddleware (itsdangerous) under a key
derived from the app's OAuth client secret; it is HttpOnly, SameSite=Lax, and Secure when
TANDEM_PUBLIC_URL is https. Every form carries the session's CSRF token, and only a session
may post (a token is read-only).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy import ColumnElement

from tandem.infra import tokens
from tandem.infra.models import Task
from tandem.infra.settings import Settings
from tandem.infra.tokens import Scope

SESSION_COOKIE = "tandem_dashboard"
SESSION_SECONDS = 8 * 3600


class Role(enum.StrEnum):
    RESEARCH = "research"  # a team's tasks, with model names
    MEMBER = "member"  # a team's tasks by letter (a token without the export scope)
    RATER = "rater"  # their own statistics only


@dataclass(frozen=True)
class Viewer:
    login: str  # GitHub login, or the API token's name
    role: Role
    team: str | None  # the Tandem team whose tasks they see (None for a rater)
    csrf: str | None = None  # None for a token: it may not post
    user_id: int | None = None  # GitHub's user id of a session (a rater's own votes are found by it)

    @property
    def sees_models(self) -> bool:
        return self.role is Role.RESEARCH

    @property
    def scope(self) -> tuple[ColumnElement[bool], ...]:
        return (Task.team == self.team,)


class SignInRequired(Exception):
    """No session and no token: the browser is sent to the sign-in page."""


def session_key(settings: Settings) -> str:
    """The key sessions are signed with: derived from the OAuth client secret (a secret this
    server holds anyway), so nothing new needs storing; without one nobody can sign in, and a
    random key is as good as any."""
    if settings.client_secret is None:
        return secrets.token_urlsafe(32)
    secret = settings.client_secret.get_secret_value().encode()
    return hmac.new(secret, b"tandem dashboard sessions", hashlib.sha256).hexdigest()


def start_session(request: Request, login: str, user_id: int, role: Role, team: str | None) -> None:
    request.session.clear()
    request.session.update(
        {"login": login, "user_id": user_id, "role": role.value, "team": team, "csrf": secrets.token_urlsafe(24)}
    )


def viewer(request: Request) -> Viewer:
    """The request's viewer (a dependency); SignInRequired if there is none."""
    scheme, credential = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and credential:
        with request.app.state.services.storage.transaction() as session:
            client = tokens.authenticate(session, credential)
        if client is None:
            raise HTTPException(401, "unknown or revoked API token", {"WWW-Authenticate": "Bearer"})
        if Scope.READ not in client.scopes:
            raise HTTPException(403, "the dashboard needs a token with the read scope")
        role = Role.RESEARCH if Scope.EXPORT in client.scopes else Role.MEMBER
        return Viewer(client.name, role, client.team)
    data = request.session
    if not data.get("login"):
        raise SignInRequired()
    return Viewer(data["login"], Role(data["role"]), data.get("team"), data["csrf"], data.get("user_id"))


def team_viewer(request: Request) -> Viewer:
    """A viewer who may see a team's pages (not a rater: they have their own page only)."""
    found = viewer(request)
    if found.role is Role.RATER:
        raise HTTPException(403, "raters see their own statistics only")
    return found


def is_operator(viewer_: Viewer, settings: Settings) -> bool:
    """A signed-in session (not a token) whose login is in TANDEM_DASHBOARD_OPERATORS: queue health
    spans every team and installation, so it is for the people who run the server only."""
    operators = {login.lower() for login in settings.dashboard_operators}
    return viewer_.csrf is not None and viewer_.login.lower() in operators


def operator(request: Request) -> Viewer:
    """A viewer who may see queue health and retry (a dependency); 403 for anyone else."""
    found = team_viewer(request)
    if not is_operator(found, request.app.state.services.settings):
        raise HTTPException(403, "queue health and retries are for the operators (TANDEM_DASHBOARD_OPERATORS)")
    return found


def check_csrf(viewer_: Viewer, form_token: str | None) -> None:
    if viewer_.csrf is None or not form_token or not secrets.compare_digest(viewer_.csrf, str(form_token)):
        raise HTTPException(403, "this form has expired or was not sent from the dashboard; reload the page")
