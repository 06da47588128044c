"""Review requests on a pull request."""

from __future__ import annotations

from .. import errors
from ..state import Account, Issue, Repository, Team
from ..util import iso
from .base import DomainBase


class Reviewers(DomainBase):
    def _can_review(self, repo: Repository, acc: Account) -> bool:
        login = acc.login.lower()
        if repo.owner is acc or login in repo.collaborators:
            return True
        return repo.owner.is_org and login in repo.owner.members

    def request_reviewers(self, issue: Issue, actor: Account, logins: list[str], team_slugs: list[str]) -> None:
        with self.state.lock:
            repo = issue.repo
            users: list[Account] = []
            for login in logins:
                acc = self.state.account(login)
                if acc is not None and acc is issue.user:
                    raise errors.validation(message="Review cannot be requested from pull request author.")
                if acc is None or acc.is_org or not self._can_review(repo, acc):
                    raise errors.validation(
                        message=(
                            "Reviews may only be requested from collaborators. One or more of the users or teams "
                            f"you specified is not a collaborator of the {repo.full_name} repository."
                        )
                    )
                users.append(acc)
            teams: list[Team] = []
            for slug in team_slugs:
                team = repo.owner.teams.get(slug.lower()) if repo.owner.is_org else None
                if team is None:
                    raise errors.validation(
                        message=(
                            "Reviews may only be requested from collaborators. One or more of the users or teams "
                            f"you specified is not a collaborator of the {repo.full_name} repository."
                        )
                    )
                teams.append(team)
            pr = issue.pull_request
            for acc in users:
                if acc in pr.requested_reviewers:
                    continue
                pr.requested_reviewers.append(acc)
                issue.updated_at = iso()
                self.emit(
                    repo,
                    "pull_request",
                    "review_requested",
                    actor,
                    {
                        "number": issue.number,
                        "requested_reviewer": self.views.user(acc),
                        "pull_request": self.views.pull(issue),
                    },
                )
            for team in teams:
                if team in pr.requested_teams:
                    continue
                pr.requested_teams.append(team)
                self.emit(
                    repo,
                    "pull_request",
                    "review_requested",
                    actor,
                    {
                        "number": issue.number,
                        "requested_team": self.views.team(team),
                        "pull_request": self.views.pull(issue),
                    },
                )

    def remove_requested_reviewers(
        self, issue: Issue, actor: Account, logins: list[str], team_slugs: list[str]
    ) -> None:
        with self.state.lock:
            pr = issue.pull_request
            for login in logins:
                acc = next((a for a in pr.requested_reviewers if a.login.lower() == login.lower()), None)
                if acc is None:
                    continue
                pr.requested_reviewers.remove(acc)
                self.emit(
                    issue.repo,
                    "pull_request",
                    "review_request_removed",
                    actor,
                    {
                        "number": issue.number,
                        "requested_reviewer": self.views.user(acc),
                        "pull_request": self.views.pull(issue),
                    },
                )
            for slug in team_slugs:
                team = next((t for t in pr.requested_teams if t.slug == slug.lower()), None)
                if team is None:
                    continue
                pr.requested_teams.remove(team)
                self.emit(
                    issue.repo,
                    "pull_request",
                    "review_request_removed",
                    actor,
                    {
                        "number": issue.number,
                        "requested_team": self.views.team(team),
                        "pull_request": self.views.pull(issue),
                    },
                )
