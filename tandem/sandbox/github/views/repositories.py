"""Views of repositories and their labels."""

from __future__ import annotations

from typing import Any

from ..render import Fit
from ..state import Label, Repository
from ..util import q
from .accounts import AccountViews


class RepositoryViews(AccountViews):
    def repo(self, repo: Repository, with_parent: bool = True, permissions: dict | None = None) -> dict:
        full = f"{q(repo.owner.login)}/{q(repo.name)}"
        api = f"{self.base}/repos/{full}"
        html = f"{self.base}/{full}"
        open_count = sum(1 for i in repo.issues.values() if i.state == "open")
        forks = sum(1 for r in self.state.repos_by_id.values() if r.fork_of is repo and not r.deleted)
        v: dict[str, Any] = {
            "id": repo.id,
            "node_id": repo.node_id,
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self.user(repo.owner),
            "private": repo.private,
            "html_url": html,
            "description": repo.description,
            "fork": repo.fork_of is not None,
            "url": api,
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{api}/assignees{{/user}}",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "comments_url": f"{api}/comments{{/number}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "contributors_url": f"{api}/contributors",
            "deployments_url": f"{api}/deployments",
            "downloads_url": f"{api}/downloads",
            "events_url": f"{api}/events",
            "forks_url": f"{api}/forks",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "git_url": repo.clone_url,
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "issues_url": f"{api}/issues{{/number}}",
            "keys_url": f"{api}/keys{{/key_id}}",
            "labels_url": f"{api}/labels{{/name}}",
            "languages_url": f"{api}/languages",
            "merges_url": f"{api}/merges",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "releases_url": f"{api}/releases{{/id}}",
            "ssh_url": repo.clone_url,
            "stargazers_url": f"{api}/stargazers",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription",
            "tags_url": f"{api}/tags",
            "teams_url": f"{api}/teams",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "clone_url": repo.clone_url,
            "mirror_url": None,
            "hooks_url": f"{api}/hooks",
            "svn_url": html,
            "homepage": repo.homepage,
            "language": None,
            "forks_count": forks,
            "forks": forks,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "stargazers": 0,
            "size": 0,
            "default_branch": repo.default_branch,
            "master_branch": repo.default_branch,
            "open_issues_count": open_count,
            "open_issues": open_count,
            "is_template": repo.is_template,
            "topics": list(repo.topics),
            "has_issues": repo.has_issues,
            "has_projects": repo.has_projects,
            "has_wiki": repo.has_wiki,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": repo.has_discussions,
            "has_pull_requests": True,
            "pull_request_creation_policy": "all",
            "archived": repo.archived,
            "disabled": False,
            "visibility": repo.visibility,
            "pushed_at": repo.pushed_at,
            "created_at": repo.created_at,
            "updated_at": repo.updated_at,
            "allow_rebase_merge": True,
            "allow_squash_merge": True,
            "allow_merge_commit": True,
            "allow_auto_merge": False,
            "allow_update_branch": False,
            "delete_branch_on_merge": False,
            "use_squash_pr_title_as_default": False,
            "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
            "squash_merge_commit_message": "COMMIT_MESSAGES",
            "merge_commit_title": "MERGE_MESSAGE",
            "merge_commit_message": "PR_TITLE",
            "allow_forking": repo.allow_forking,
            "web_commit_signoff_required": False,
            "template_repository": None,
            "license": None,
            "subscribers_count": 0,
            "network_count": forks,
            "custom_properties": {},
        }
        if repo.owner.is_org:
            # A user object in REST; webhook schemas that want a string get none.
            v["organization"] = Fit(self.user(repo.owner))
        if permissions is not None:
            v["permissions"] = permissions
        if with_parent and repo.fork_of is not None:
            source = repo.fork_of
            while source.fork_of is not None:
                source = source.fork_of
            v["parent"] = self.repo(repo.fork_of, with_parent=False)
            v["source"] = self.repo(source, with_parent=False)
        return v

    def label(self, repo: Repository, label: Label) -> dict:
        return {
            "id": label.id,
            "node_id": label.node_id,
            "url": f"{self.base}/repos/{q(repo.owner.login)}/{q(repo.name)}/labels/{q(label.name)}",
            "name": label.name,
            "color": label.color,
            "description": label.description,
            "default": label.default,
            "archived_at": None,
            "archived_by": None,
        }
