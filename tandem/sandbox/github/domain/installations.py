"""Installing an app, suspending it, changing the repositories it sees."""

from __future__ import annotations

from .. import errors
from ..state import Account, App, Installation, Repository
from ..util import iso
from .base import DomainBase


class Installations(DomainBase):
    def install(
        self, app: App, account: Account, repositories: list[Repository] | None, sender: Account
    ) -> Installation:
        with self.state.lock:
            for inst in self.state.installations.values():
                if inst.app is app and inst.account is account and not inst.deleted:
                    raise ValueError(f"{app.slug} is already installed on {account.login}")
            ident = self.state.next_id("installation")
            inst = Installation(
                id=ident,
                app=app,
                account=account,
                repository_selection="all" if repositories is None else "selected",
                repo_ids={r.id for r in repositories or []},
                permissions=dict(app.permissions),
                events=list(app.events),
            )
            self.state.installations[ident] = inst
            repos = self.state.installation_repos(inst)
            self.emit_installation(
                inst, "installation", "created", sender, {"repositories": [self._repo_ref(r) for r in repos]}
            )
            return inst

    @staticmethod
    def _repo_ref(repo: Repository) -> dict:
        return {
            "id": repo.id,
            "node_id": repo.node_id,
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
        }

    def uninstall(self, inst: Installation, sender: Account) -> None:
        with self.state.lock:
            if inst.deleted:
                raise errors.not_found()
            repos = self.state.installation_repos(inst)
            self.emit_installation(
                inst, "installation", "deleted", sender, {"repositories": [self._repo_ref(r) for r in repos]}
            )
            inst.deleted = True
            for token in self.state.tokens.values():
                if token.installation is inst:
                    token.revoked = True

    def suspend(self, inst: Installation, sender: Account, suspended: bool) -> None:
        with self.state.lock:
            if bool(inst.suspended_at) == suspended:
                return
            inst.suspended_at = iso() if suspended else None
            inst.suspended_by = sender if suspended else None
            inst.updated_at = iso()
            self.emit_installation(inst, "installation", "suspend" if suspended else "unsuspend", sender, {})

    def change_installation_repos(
        self, inst: Installation, add: list[Repository], remove: list[Repository], sender: Account
    ) -> None:
        with self.state.lock:
            if inst.repository_selection == "all":
                raise ValueError("installation has access to all repositories")
            added = [r for r in add if r.id not in inst.repo_ids]
            removed = [r for r in remove if r.id in inst.repo_ids]
            inst.repo_ids |= {r.id for r in added}
            inst.repo_ids -= {r.id for r in removed}
            inst.updated_at = iso()
            if added:
                self.emit_installation(
                    inst,
                    "installation_repositories",
                    "added",
                    sender,
                    {
                        "repository_selection": inst.repository_selection,
                        "repositories_added": [self._repo_ref(r) for r in added],
                        "repositories_removed": [],
                    },
                )
            if removed:
                self.emit_installation(
                    inst,
                    "installation_repositories",
                    "removed",
                    sender,
                    {
                        "repository_selection": inst.repository_selection,
                        "repositories_added": [],
                        "repositories_removed": [self._repo_ref(r) for r in removed],
                    },
                )
