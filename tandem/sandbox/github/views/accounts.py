"""Views of users, organizations, teams, apps and installations."""

from __future__ import annotations

import threading
from typing import overload

from ..state import Account, App, Installation, State, Team
from ..util import q


class AccountViews:
    def __init__(self, base_url: str, state: State):
        self.base = base_url.rstrip("/")
        self.state = state
        self._stats_cache: dict[tuple[int, str, str], dict] = {}
        self._stats_lock = threading.Lock()

    @overload
    def user(self, acc: Account) -> dict: ...
    @overload
    def user(self, acc: None) -> None: ...
    def user(self, acc: Account | None) -> dict | None:
        if acc is None:
            return None
        api = f"{self.base}/users/{q(acc.login)}"
        html = f"{self.base}/apps/{acc.app.slug}" if acc.app is not None else f"{self.base}/{q(acc.login)}"
        return {
            "login": acc.login,
            "id": acc.id,
            "node_id": acc.node_id,
            "avatar_url": f"{self.base}/avatars/u/{acc.id}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": html,
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": acc.type,
            "user_view_type": "public",
            "site_admin": acc.site_admin,
        }

    def user_full(self, acc: Account) -> dict:
        """``public-user`` (GET /users/{username})."""
        v = self.user(acc)
        n_repos = sum(1 for r in self.state.repos_by_id.values() if r.owner is acc and not r.private and not r.deleted)
        v.update(
            {
                "name": acc.name,
                "company": None,
                "blog": "",
                "location": None,
                "email": acc.email,
                "hireable": None,
                "bio": None,
                "twitter_username": None,
                "public_repos": n_repos,
                "public_gists": 0,
                "followers": 0,
                "following": 0,
                "created_at": acc.created_at,
                "updated_at": acc.created_at,
            }
        )
        return v

    def org(self, acc: Account | None) -> dict | None:
        if acc is None or not acc.is_org:
            return None
        api = f"{self.base}/orgs/{q(acc.login)}"
        return {
            "login": acc.login,
            "id": acc.id,
            "node_id": acc.node_id,
            "url": api,
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events",
            "hooks_url": f"{api}/hooks",
            "issues_url": f"{api}/issues",
            "members_url": f"{api}/members{{/member}}",
            "public_members_url": f"{api}/public_members{{/member}}",
            "avatar_url": f"{self.base}/avatars/u/{acc.id}?v=4",
            "description": "",
        }

    def team(self, team: Team) -> dict:
        api = f"{self.base}/organizations/{team.org.id}/team/{team.id}"
        return {
            "id": team.id,
            "node_id": team.node_id,
            "url": api,
            "html_url": f"{self.base}/orgs/{q(team.org.login)}/teams/{team.slug}",
            "name": team.name,
            "slug": team.slug,
            "description": team.description,
            "privacy": team.privacy,
            "notification_setting": "notifications_enabled",
            "permission": team.permission,
            "members_url": f"{api}/members{{/member}}",
            "repositories_url": f"{api}/repos",
            "type": "organization",
            "organization_id": team.org.id,
            "parent": None,
        }

    @overload
    def integration(self, app: App) -> dict: ...
    @overload
    def integration(self, app: None) -> None: ...
    def integration(self, app: App | None) -> dict | None:
        if app is None:
            return None
        installs = sum(1 for i in self.state.installations.values() if i.app is app and not i.deleted)
        return {
            "id": app.id,
            "slug": app.slug,
            "node_id": app.node_id,
            "client_id": app.client_id,
            "owner": self.user(app.owner),
            "name": app.name,
            "description": app.description,
            "external_url": app.external_url or f"{self.base}/apps/{app.slug}",
            "html_url": f"{self.base}/apps/{app.slug}",
            "created_at": app.created_at,
            "updated_at": app.updated_at,
            "permissions": dict(app.permissions),
            "events": list(app.events),
            "installations_count": installs,
        }

    def installation(self, inst: Installation) -> dict:
        acc = inst.account
        html = (
            f"{self.base}/organizations/{q(acc.login)}/settings/installations/{inst.id}"
            if acc.is_org
            else f"{self.base}/settings/installations/{inst.id}"
        )
        return {
            "id": inst.id,
            "node_id": inst.node_id,
            "account": self.user(acc),
            "repository_selection": inst.repository_selection,
            "access_tokens_url": f"{self.base}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.base}/installation/repositories",
            "html_url": html,
            "app_id": inst.app.id,
            "app_slug": inst.app.slug,
            "client_id": inst.app.client_id,
            "target_id": acc.id,
            "target_type": acc.type,
            "permissions": dict(inst.permissions),
            "events": list(inst.events),
            "created_at": inst.created_at,
            "updated_at": inst.updated_at,
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": self.user(inst.suspended_by),
            "suspended_at": inst.suspended_at,
            "contact_email": None,
        }
