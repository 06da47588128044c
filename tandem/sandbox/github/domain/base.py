"""What every change works with: the state, the views, the webhook queue; and who a
commit is by."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..gitrepo import Person
from ..state import Account, App, Installation, Repository, State
from ..util import iso
from ..views import Views
from ..webhooks import ALWAYS_SENT, Dispatcher


def noreply_email(acc: Account) -> str:
    return f"{acc.id}+{acc.login}@users.noreply.github.com"


def person(acc: Account, when: str | None = None) -> Person:
    return Person(name=acc.name or acc.login, email=acc.email or noreply_email(acc), date=when or iso())


class DomainBase:
    def __init__(self, state: State, views: Views, dispatcher: Dispatcher, root: Path, url_file: Path):
        self.state = state
        self.views = views
        self.hooks = dispatcher
        self.root = Path(root)
        self.url_file = url_file

    def _deliver(self, inst: Installation, event: str, action: str | None, values: dict) -> None:
        app = inst.app
        if inst.deleted or (inst.suspended_at and event not in ("installation",)):
            return
        if event not in ALWAYS_SENT and event not in app.events:
            return
        repo_id = values.get("repository", {}).get("id") if isinstance(values.get("repository"), dict) else None
        delivery = self.hooks.build(app, event, action, values, inst.id, repo_id)
        self.hooks.enqueue(delivery)

    def emit(
        self,
        repo: Repository,
        event: str,
        action: str | None,
        sender: Account,
        values: dict[str, Any],
        only_app: App | None = None,
    ) -> None:
        """Send ``event`` to every app installed on ``repo`` that subscribed to it."""
        with self.state.lock:
            targets = [
                i
                for i in self.state.installations.values()
                if not i.deleted
                and i.account is repo.owner
                and (i.repository_selection == "all" or repo.id in i.repo_ids)
                and (only_app is None or i.app is only_app)
            ]
            if not targets:
                return
            # Events without actions (status, push) carry no "action" key, as GitHub's.
            base = {
                **({"action": action} if action is not None else {}),
                **values,
                "repository": self.views.repo(repo),
                "sender": self.views.user(sender),
            }
            if repo.owner.is_org:
                base["organization"] = self.views.org(repo.owner)
            for inst in targets:
                self._deliver(inst, event, action, {**base, "installation": {"id": inst.id, "node_id": inst.node_id}})

    def emit_installation(
        self, inst: Installation, event: str, action: str, sender: Account, values: dict[str, Any]
    ) -> None:
        with self.state.lock:
            payload = {
                "action": action,
                "installation": self.views.installation(inst),
                **values,
                "requester": None,
                "sender": self.views.user(sender),
            }
            app = inst.app
            delivery = self.hooks.build(app, event, action, payload, inst.id, None)
            self.hooks.enqueue(delivery)
