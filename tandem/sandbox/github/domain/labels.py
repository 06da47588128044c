"""Labels of a repository, and on its issues and pull requests."""

from __future__ import annotations

import re

from .. import errors
from ..errors import ApiError
from ..state import Account, App, Issue, Label, Repository
from ..util import iso, node_id
from .base import DomainBase

DEFAULT_LABEL_COLOR = "ededed"


class Labels(DomainBase):
    def ensure_label(
        self, repo: Repository, name: str, color: str | None = None, description: str | None = None
    ) -> Label:
        with self.state.lock:
            label = repo.labels.get(name.lower())
            if label is None:
                ident = self.state.next_id("label")
                label = Label(
                    id=ident,
                    node_id=node_id("Label", ident),
                    name=name,
                    color=(color or DEFAULT_LABEL_COLOR).lstrip("#").lower(),
                    description=description,
                )
                repo.labels[name.lower()] = label
            return label

    def create_label(self, repo: Repository, name: str, color: str | None, description: str | None) -> Label:
        with self.state.lock:
            if not name:
                raise errors.missing_field("Label", "name")
            if name.lower() in repo.labels:
                raise errors.invalid_field("Label", "name", "already_exists")
            if color is not None and not re.fullmatch(r"#?[0-9a-fA-F]{6}", color):
                raise errors.invalid_field("Label", "color")
            return self.ensure_label(repo, name, color, description)

    def add_labels(self, issue: Issue, names: list[str], actor: Account, via_app: App | None) -> None:
        with self.state.lock:
            for name in names:
                if not name:
                    continue
                label = self.ensure_label(issue.repo, name)
                if label in issue.labels:
                    continue
                issue.labels.append(label)
                issue.updated_at = iso()
                if issue.pr is not None:
                    self.emit(
                        issue.repo,
                        "pull_request",
                        "labeled",
                        actor,
                        {
                            "number": issue.number,
                            "label": self.views.label(issue.repo, label),
                            "pull_request": self.views.pull(issue),
                        },
                    )

    def remove_label(
        self, issue: Issue, name: str, actor: Account, via_app: App | None, missing_ok: bool = False
    ) -> None:
        with self.state.lock:
            label = next((lb for lb in issue.labels if lb.name.lower() == name.lower()), None)
            if label is None:
                if missing_ok:
                    return
                raise ApiError(404, "Label does not exist")
            issue.labels.remove(label)
            issue.updated_at = iso()
            if issue.pr is not None:
                self.emit(
                    issue.repo,
                    "pull_request",
                    "unlabeled",
                    actor,
                    {
                        "number": issue.number,
                        "label": self.views.label(issue.repo, label),
                        "pull_request": self.views.pull(issue),
                    },
                )

    def set_labels(self, issue: Issue, names: list[str], actor: Account, via_app: App | None) -> None:
        with self.state.lock:
            wanted = {n.lower() for n in names if n}
            for label in list(issue.labels):
                if label.name.lower() not in wanted:
                    self.remove_label(issue, label.name, actor, via_app)
            self.add_labels(issue, names, actor, via_app)
