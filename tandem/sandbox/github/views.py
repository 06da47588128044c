"""State objects -> the values GitHub would show for them.

Each function returns a plain dict with every field GitHub fills for that kind
of object (URLs, counts, timestamps, nested objects). The renderer then keeps
the fields the response or webhook schema lists and fills any required field
still missing, so one view serves every schema that embeds the object
(``simple-user`` in a PR, ``repository-webhooks`` in a delivery, ...).

URLs follow github.com's layout on the emulator's single origin:
API objects under ``{base}/repos/...``, ``{base}/users/...``; web pages at
``{base}/{owner}/{repo}/pull/{n}`` and so on.

Git-derived fields (a PR's head/base sha, commit counts, diff stats) are read
from the bare repositories when the view is built, through a ``GitSnapshot``
that reads each repository's refs once per request.
"""

from __future__ import annotations

import threading
from typing import Any, overload
from urllib.parse import quote

from .render import Fit
from .state import (
    Account,
    App,
    CheckRun,
    Installation,
    Issue,
    IssueComment,
    Label,
    Reaction,
    Repository,
    Review,
    ReviewComment,
    State,
    Team,
)

REACTION_KEYS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket")


def q(segment: str) -> str:
    """Quote one URL path segment (``tandem[bot]`` -> ``tandem%5Bbot%5D``)."""
    return quote(segment, safe="")


class GitSnapshot:
    """Refs of each repository, read once (lazily) for the duration of a request."""

    def __init__(self) -> None:
        self._refs: dict[int, dict[str, str]] = {}

    def refs(self, repo: Repository) -> dict[str, str]:
        refs = self._refs.get(repo.id)
        if refs is None:
            refs = self._refs[repo.id] = repo.git.refs()
        return refs

    def branch_sha(self, repo: Repository, branch: str) -> str | None:
        return self.refs(repo).get(f"refs/heads/{branch}")

    def invalidate(self, repo: Repository) -> None:
        self._refs.pop(repo.id, None)


class Views:
    def __init__(self, base_url: str, state: State):
        self.base = base_url.rstrip("/")
        self.state = state
        self._stats_cache: dict[tuple[int, str, str], dict] = {}
        self._stats_lock = threading.Lock()

    # ------------------------------------------------------------------ accounts

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

    # ------------------------------------------------------------------ apps

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

    # ------------------------------------------------------------------ repositories

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

    # ------------------------------------------------------------------ issues & PRs

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

    def pr_shas(self, issue: Issue, snap: GitSnapshot) -> tuple[str | None, str | None]:
        """(head sha, base sha) as git says now. A deleted head branch falls back
        to ``refs/pull/N/head``, which GitHub keeps for every pull request."""
        pr = issue.pull_request
        head = snap.branch_sha(pr.head_repo, pr.head_ref)
        if head is None:
            head = snap.refs(issue.repo).get(f"refs/pull/{issue.number}/head")
        base = snap.branch_sha(issue.repo, pr.base_ref)
        return head, base

    def pr_stats(self, issue: Issue, head: str | None, base: str | None) -> dict:
        """Commit count and diff size between the merge base and the head."""
        if not head or not base:
            return {"commits": 0, "additions": 0, "deletions": 0, "changed_files": 0}
        key = (issue.repo.id, base, head)
        with self._stats_lock:
            cached = self._stats_cache.get(key)
        if cached is not None:
            return cached
        git = issue.repo.git
        try:
            merge_base = git.merge_base(base, head) or base
            files = git.text("diff", "--no-renames", "--numstat", merge_base, head).splitlines()
            adds = dels = 0
            for line in files:
                a, d, _ = line.split("\t", 2)
                adds += 0 if a == "-" else int(a)
                dels += 0 if d == "-" else int(d)
            stats = {
                "commits": git.count_commits(merge_base, head),
                "additions": adds,
                "deletions": dels,
                "changed_files": len(files),
            }
        except Exception:  # objects not fetched yet (fork head): report nothing rather than fail
            stats = {"commits": 0, "additions": 0, "deletions": 0, "changed_files": 0}
        with self._stats_lock:
            self._stats_cache[key] = stats
        return stats

    def _pr_side(self, repo: Repository, ref: str, sha: str | None) -> dict:
        return {
            "label": f"{repo.owner.login}:{ref}",
            "ref": ref,
            "sha": sha or "",
            "user": self.user(repo.owner),
            "repo": self.repo(repo, with_parent=False),
        }

    def pull(self, issue: Issue, snap: GitSnapshot | None = None, full: bool = True) -> dict:
        """``pull-request`` (full=True) or ``pull-request-simple`` values."""
        snap = snap or GitSnapshot()
        pr = issue.pull_request
        u = self.issue_urls(issue)
        head_sha, base_sha = self.pr_shas(issue, snap)
        api = u["pull_api"]
        repo_api = u["repo_api"]
        v: dict[str, Any] = {
            "url": api,
            "id": pr.id,
            "node_id": pr.node_id,
            "html_url": u["html"],
            "diff_url": u["html"] + ".diff",
            "patch_url": u["html"] + ".patch",
            "issue_url": u["api"],
            "commits_url": f"{api}/commits",
            "review_comments_url": f"{api}/comments",
            "review_comment_url": f"{repo_api}/pulls/comments{{/number}}",
            "comments_url": f"{u['api']}/comments",
            "statuses_url": f"{repo_api}/statuses/{head_sha or ''}",
            "number": issue.number,
            "state": issue.state,
            "locked": issue.locked,
            "title": issue.title,
            "user": self.user(issue.user),
            "body": issue.body,
            "labels": [self.label(issue.repo, lb) for lb in issue.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "merged_at": None,
            "merge_commit_sha": None,
            "assignee": self.user(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self.user(a) for a in issue.assignees],
            "requested_reviewers": [self.user(a) for a in pr.requested_reviewers],
            "requested_teams": [self.team(t) for t in pr.requested_teams],
            "head": self._pr_side(pr.head_repo, pr.head_ref, head_sha),
            "base": self._pr_side(issue.repo, pr.base_ref, base_sha),
            "_links": {
                "self": {"href": api},
                "html": {"href": u["html"]},
                "issue": {"href": u["api"]},
                "comments": {"href": f"{u['api']}/comments"},
                "review_comments": {"href": f"{api}/comments"},
                "review_comment": {"href": f"{repo_api}/pulls/comments{{/number}}"},
                "commits": {"href": f"{api}/commits"},
                "statuses": {"href": f"{repo_api}/statuses/{head_sha or ''}"},
            },
            "author_association": self.author_association(issue.user, issue.repo),
            "auto_merge": None,
            "draft": pr.draft,
        }
        if full:
            stats = self.pr_stats(issue, head_sha, base_sha)
            v.update(
                {
                    "merged": False,
                    "mergeable": True if issue.state == "open" else None,
                    "rebaseable": True if issue.state == "open" else None,
                    "mergeable_state": ("draft" if pr.draft else "clean") if issue.state == "open" else "unknown",
                    "merged_by": None,
                    "comments": issue.comment_count,
                    "review_comments": issue.review_comment_count,
                    "maintainer_can_modify": pr.maintainer_can_modify,
                    **stats,
                }
            )
        return v

    def pull_minimal(self, issue: Issue, snap: GitSnapshot) -> dict:
        head_sha, base_sha = self.pr_shas(issue, snap)

        def side(repo: Repository, ref: str, sha: str | None) -> dict:
            return {
                "ref": ref,
                "sha": sha or "",
                "repo": {
                    "id": repo.id,
                    "url": f"{self.base}/repos/{q(repo.owner.login)}/{q(repo.name)}",
                    "name": repo.name,
                },
            }

        return {
            "id": issue.pull_request.id,
            "number": issue.number,
            "url": self.issue_urls(issue)["pull_api"],
            "head": side(issue.pull_request.head_repo, issue.pull_request.head_ref, head_sha),
            "base": side(issue.repo, issue.pull_request.base_ref, base_sha),
        }

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

    def review(self, r: Review) -> dict:
        u = self.issue_urls(r.issue)
        html = f"{u['html']}#pullrequestreview-{r.id}"
        v = {
            "id": r.id,
            "node_id": r.node_id,
            "user": self.user(r.user),
            "body": r.body,
            "state": r.state,
            "html_url": html,
            "pull_request_url": u["pull_api"],
            "_links": {"html": {"href": html}, "pull_request": {"href": u["pull_api"]}},
            "commit_id": r.commit_id,
            "author_association": self.author_association(r.user, r.issue.repo),
        }
        if r.submitted_at is not None:
            v["submitted_at"] = r.submitted_at
        return v

    def review_comment(self, c: ReviewComment) -> dict:
        u = self.issue_urls(c.issue)
        api = f"{u['repo_api']}/pulls/comments/{c.id}"
        html = f"{u['html']}#discussion_r{c.id}"
        v = {
            "url": api,
            "pull_request_review_id": c.review_id,
            "id": c.id,
            "node_id": c.node_id,
            "diff_hunk": c.diff_hunk,
            "path": c.path,
            "commit_id": c.commit_id,
            "original_commit_id": c.original_commit_id,
            "user": self.user(c.user),
            "body": c.body,
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "html_url": html,
            "pull_request_url": u["pull_api"],
            "author_association": self.author_association(c.user, c.issue.repo),
            "_links": {"self": {"href": api}, "html": {"href": html}, "pull_request": {"href": u["pull_api"]}},
            "position": c.position,
            "original_position": c.position,
            "start_line": c.start_line,
            "original_start_line": c.start_line,
            "start_side": c.start_side,
            "line": c.line,
            "original_line": c.line,
            "side": c.side,
            "subject_type": c.subject_type,
            "reactions": self._reactions(f"{api}/reactions", c.reactions),
        }
        if c.in_reply_to_id is not None:
            v["in_reply_to_id"] = c.in_reply_to_id
        return v

    # ------------------------------------------------------------------ checks

    def check_run(self, run: CheckRun, snap: GitSnapshot | None = None) -> dict:
        snap = snap or GitSnapshot()
        repo = run.repo
        full = f"{q(repo.owner.login)}/{q(repo.name)}"
        api = f"{self.base}/repos/{full}/check-runs/{run.id}"
        prs = []
        for issue in repo.issues.values():
            if issue.pr is not None and issue.state == "open":
                head, _ = self.pr_shas(issue, snap)
                if head == run.head_sha:
                    prs.append(self.pull_minimal(issue, snap))
        output = run.output or {}
        return {
            "id": run.id,
            "head_sha": run.head_sha,
            "node_id": run.node_id,
            "external_id": run.external_id if run.external_id is not None else "",
            "url": api,
            "html_url": f"{self.base}/{full}/runs/{run.id}",
            "details_url": run.details_url or f"{self.base}/{full}/runs/{run.id}",
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": run.started_at,
            "completed_at": run.completed_at,
            "output": {
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_count": len(output.get("annotations") or []),
                "annotations_url": f"{api}/annotations",
            },
            "name": run.name,
            "check_suite": {"id": run.check_suite_id},
            "app": self.integration(run.app),
            "pull_requests": prs,
        }
