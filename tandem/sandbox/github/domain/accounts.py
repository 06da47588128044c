"""Users, organizations and teams."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..state import Account, Team
from ..util import node_id
from .base import DomainBase


class Accounts(DomainBase):
    def create_account(
        self, login: str, type: str = "User", name: str | None = None, email: str | None = None
    ) -> Account:
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?", login):
            raise ValueError(f"invalid GitHub login: {login!r}")
        with self.state.lock:
            if login.lower() in self.state.accounts:
                raise ValueError(f"login {login!r} is taken")
            ident = self.state.next_id("account")
            kind = {"User": "User", "Bot": "Bot", "Organization": "Organization"}[type]
            acc = Account(id=ident, login=login, type=kind, node_id=node_id(kind, ident), name=name, email=email)
            self.state.accounts[login.lower()] = acc
            self.state.accounts_by_id[ident] = acc
            return acc

    def add_org_member(self, org: Account, user: Account, role: str = "member") -> None:
        if not org.is_org:
            raise ValueError(f"{org.login} is not an organization")
        with self.state.lock:
            org.members[user.login.lower()] = role

    def create_team(
        self,
        org: Account,
        name: str,
        slug: str | None = None,
        members: Iterable[Account] = (),
        maintainers: Iterable[Account] = (),
    ) -> Team:
        slug = slug or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        with self.state.lock:
            if slug in org.teams:
                raise ValueError(f"team {slug!r} exists in {org.login}")
            ident = self.state.next_id("team")
            team = Team(id=ident, node_id=node_id("Team", ident), org=org, slug=slug, name=name)
            for m in members:
                team.members[m.login.lower()] = "member"
                org.members.setdefault(m.login.lower(), "member")
            for m in maintainers:
                team.members[m.login.lower()] = "maintainer"
                org.members.setdefault(m.login.lower(), "member")
            org.teams[slug] = team
            return team
