"""Views of issues, issue comments and reactions."""

from __future__ import annotations

from typing import Any

from ..state import Account, Issue, IssueComment, Reaction, Repository
from ..util import q
from .repositories import RepositoryViews

REACTION_KEYS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket")


class IssueViews(RepositoryViews):
    def author_association(self, acc: Account, repo: Repository) -> str:
        if acc.type == "Bot":
            return "NONE"
        if repo.owner is acc:
            return "OWNER"
        if repo.owner.is_org and acc.login.lower() in repo.owner.members:
            return "MEMBER"
        if acc.login.lower() in repo.collaborators:
            return "COLLABORATOR"
        return "NONE"

    def _reactions(self, url: str, reactions: list[Reaction]) -> dict:
        counts = {k: 0 for k in REACTION_KEYS}
        for r in reactions:
            counts[r.content] += 1
        return {"url": url, "total_count": len(reactions), **counts}

    def issue_urls(self, issue: Issue) -> dict[str, str]:
        repo = issue.repo
        full = f"{q(repo.owner.login)}/{q(repo.name)}"
        api = f"{self.base}/repos/{full}/issues/{issue.number}"
        kind = "pull" if issue.pr is not None else "issues"
        return {
            "api": api,
            "html": f"{self.base}/{full}/{kind}/{issue.number}",
            "repo_api": f"{self.base}/repos/{full}",
            "pull_api": f"{self.base}/repos/{full}/pulls/{issue.number}",
        }

    def issue(self, issue: Issue) -> dict:
        u = self.issue_urls(issue)
        v: dict[str, Any] = {
            "id": issue.id,
            "node_id": issue.node_id,
            "url": u["api"],
            "repository_url": u["repo_api"],
            "labels_url": f"{u['api']}/labels{{/name}}",
            "comments_url": f"{u['api']}/comments",
            "events_url": f"{u['api']}/events",
            "html_url": u["html"],
            "number": issue.number,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "title": issue.title,
            "body": issue.body,
            "user": self.user(issue.user),
            "labels": [self.label(issue.repo, lb) for lb in issue.labels],
            "assignee": self.user(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self.user(a) for a in issue.assignees],
            "milestone": None,
            "locked": issue.locked,
            "active_lock_reason": None,
            "comments": issue.comment_count,
            "closed_at": issue.closed_at,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_by": self.user(issue.closed_by),
            "author_association": self.author_association(issue.user, issue.repo),
            "reactions": self._reactions(f"{u['api']}/reactions", []),
            "timeline_url": f"{u['api']}/timeline",
            "performed_via_github_app": self.integration(issue.via_app),
        }
        if issue.pr is not None:
            v["draft"] = issue.pr.draft
            v["pull_request"] = {
                "url": u["pull_api"],
                "html_url": u["html"],
                "diff_url": u["html"] + ".diff",
                "patch_url": u["html"] + ".patch",
                "merged_at": None,
            }
        return v

    def comment(self, c: IssueComment) -> dict:
        repo = c.repo
        full = f"{q(repo.owner.login)}/{q(repo.name)}"
        issue = repo.issues.get(c.issue_number)
        html = self.issue_urls(issue)["html"] if issue is not None else f"{self.base}/{full}/issues/{c.issue_number}"
        api = f"{self.base}/repos/{full}/issues/comments/{c.id}"
        return {
            "id": c.id,
            "node_id": c.node_id,
            "url": api,
            "html_url": f"{html}#issuecomment-{c.id}",
            "body": c.body,
            "user": self.user(c.user),
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "issue_url": f"{self.base}/repos/{full}/issues/{c.issue_number}",
            "author_association": self.author_association(c.user, repo),
            "performed_via_github_app": self.integration(c.via_app),
            "reactions": self._reactions(f"{api}/reactions", c.reactions),
            "pin": None,
            "minimized": None,
        }

    def reaction(self, r: Reaction) -> dict:
        return {
            "id": r.id,
            "node_id": r.node_id,
            "user": self.user(r.user),
            "content": r.content,
            "created_at": r.created_at,
        }
