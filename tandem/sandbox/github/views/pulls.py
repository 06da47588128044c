"""Views of pull requests, their reviews and review comments."""

from __future__ import annotations

from typing import Any

from ..state import Issue, Repository, Review, ReviewComment
from ..util import q
from .issues import IssueViews
from .snapshot import GitSnapshot


class PullViews(IssueViews):
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
