"""Signing in to the dashboard with GitHub: the App's user authorization (OAuth web flow).

The browser comes back with a one-time code; we exchange it (with the client id and secret from
the manifest conversion) for a user token, ask GitHub who that is, and forget the token: the
dashboard never acts as the user. Team membership is asked with the installation's token, as
for raters (tandem.domain.roles, cached), so it needs no scope from the user. The teams granted
the dashboard are TANDEM_DASHBOARD_TEAMS and each organization's `dashboard: {teams: [...]}`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from sqlalchemy import select

from tandem.domain import repo_config, roles
from tandem.domain.repo_config import RepoConfigError
from tandem.infra.errors import ServiceUnavailable, TandemError, known
from tandem.infra.models import Installation
from tandem.infra.services import Services
from tandem.infra.settings import Settings

log = logging.getLogger(__name__)

CALLBACK_PATH = "/dashboard/login/callback"


@dataclass(frozen=True)
class SignedIn:
    login: str
    user_id: int  # GitHub's id: a login can be renamed and taken by someone else, the id cannot
    team: str | None  # the dashboard team they belong to, if any


def configured(settings: Settings) -> bool:
    return bool(settings.client_id and settings.client_secret)


def authorize_url(settings: Settings, state: str) -> str:
    query = {"client_id": settings.client_id, "redirect_uri": settings.public_url + CALLBACK_PATH, "state": state}
    return f"{settings.web_url}/login/oauth/authorize?{urlencode(query)}"


def sign_in(services: Services, code: str) -> SignedIn:
    """Who the code stands for, and their dashboard team. TandemError if GitHub refuses the code,
    ServiceUnavailable if it cannot be reached."""
    settings = services.settings
    try:
        with httpx.Client(timeout=30, headers={"User-Agent": "Tandem", "Accept": "application/json"}) as http:
            answer = http.post(
                f"{settings.web_url}/login/oauth/access_token",
                data={
                    "client_id": settings.client_id,
                    "client_secret": known(settings.client_secret, "the app's client secret").get_secret_value(),
                    "code": code,
                    "redirect_uri": settings.public_url + CALLBACK_PATH,
                },
            )
            answer.raise_for_status()
            token = answer.json().get("access_token")
            if not token:
                raise TandemError("GitHub did not accept the sign-in (the link was used already or is too old)")
            user = http.get(f"{settings.github_api_url}/user", headers={"Authorization": f"Bearer {token}"})
            user.raise_for_status()
            login, user_id = user.json()["login"], int(user.json()["id"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise ServiceUnavailable(f"GitHub could not confirm the sign-in ({type(exc).__name__}); try again") from None
    return SignedIn(login, user_id, dashboard_team(services, login))


def dashboard_team(services: Services, login: str) -> str | None:
    """The first dashboard team (``dashboard_teams``) that ``login`` is a member of."""
    for installation, org, team in dashboard_teams(services):
        if roles.team_member(services, services.github.as_installation(installation), org, team, login):
            return team
    return None


def dashboard_teams(services: Services) -> Iterator[tuple[int, str, str]]:
    """(installation, org, team slug) of each team granted the dashboard, in the organizations Tandem
    is installed on: those of TANDEM_DASHBOARD_TEAMS ("org/team"), then those each organization's own
    `.github/tandem.yml` lists under `dashboard: {teams: [...]}` (read when the setting's are not
    enough: sign-ins of raters only read them all)."""
    with services.storage.transaction() as session:
        live = select(Installation.account_login, Installation.id).where(Installation.deleted_at.is_(None))
        installations = {org: installation for org, installation in session.execute(live)}
    seen = set()
    for entry in services.settings.dashboard_teams:
        org, _, team = entry.partition("/")
        if team and org in installations and (org, team) not in seen:
            seen.add((org, team))
            yield installations[org], org, team
    for org, installation in sorted(installations.items()):
        try:
            config = repo_config.organization(services, services.github.as_installation(installation), org)
        except RepoConfigError as exc:  # the setting's teams still count
            log.warning("dashboard teams of %s not read: %s", org, exc)
            continue
        for team in config.dashboard.teams:
            if (org, team) not in seen:
                seen.add((org, team))
                yield installation, org, team
