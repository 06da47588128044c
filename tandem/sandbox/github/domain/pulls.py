"""Pull requests and issues opened, edited and closed; branches moving under them."""

from __future__ import annotations

from typing import Any

from .. import errors
from ..errors import ApiError
from ..gitrepo import ZERO_SHA
from ..state import Account, App, Issue, PullRequestData, Repository
from ..util import iso, node_id
from ..views.snapshot import GitSnapshot
from .labels import Labels


class PullRequests(Labels):  # a PATCH of a pull request may set its labels
    # ================================================================== refs & pushes

    def on_ref_updated(self, repo: Repository, ref: str, old: str | None, new: str | None, sender: Account) -> None:
        """After a branch moved (push, REST ref update, contents API): keep
        ``refs/pull/N/head`` current, send ``synchronize``; a deleted head or base
        branch closes its open pull requests, as on GitHub."""
        if not ref.startswith("refs/heads/"):
            return
        branch = ref[len("refs/heads/") :]
        old = None if not old or old == ZERO_SHA else old
        new = None if not new or new == ZERO_SHA else new
        with self.state.lock:
            repo.pushed_at = iso()
            affected = []
            for r in self.state.repos_by_id.values():
                if r.deleted:
                    continue
                for issue in r.issues.values():
                    pr = issue.pr
                    if pr is None or issue.state != "open":
                        continue
                    if pr.head_repo is repo and pr.head_ref == branch:
                        affected.append(("head", issue))
                    elif r is repo and pr.base_ref == branch and new is None:
                        affected.append(("base", issue))
            for _kind, issue in affected:
                if new is None:
                    self._close(issue, sender, via_app=None)
                    continue
                if issue.pull_request.last_head_sha == new:
                    continue
                before = issue.pull_request.last_head_sha or old or ZERO_SHA
                self._sync_pull_ref(issue, new)
                issue.updated_at = iso()
                self.emit(
                    issue.repo,
                    "pull_request",
                    "synchronize",
                    sender,
                    {"number": issue.number, "before": before, "after": new, "pull_request": self.views.pull(issue)},
                )

    def _sync_pull_ref(self, issue: Issue, head_sha: str) -> None:
        """Point ``refs/pull/N/head`` of the base repository at ``head_sha``
        (fetching it from the fork for cross-repository pull requests)."""
        pr = issue.pull_request
        base_git = issue.repo.git
        ref = f"refs/pull/{issue.number}/head"
        with base_git.lock:
            if pr.head_repo is not issue.repo and base_git.object_type(head_sha) is None:
                base_git.fetch_into(pr.head_repo.git, f"+{head_sha}:{ref}")
            else:
                base_git.update_ref(ref, head_sha)
        pr.last_head_sha = head_sha

    def handle_push_report(self, git_dir: str, updates: list[list[str]], pusher: str | None) -> None:
        with self.state.lock:
            repo = next(
                (r for r in self.state.repos_by_id.values() if not r.deleted and str(r.git_dir.resolve()) == git_dir),
                None,
            )
            if repo is None:
                return
            sender = (self.state.account(pusher) if pusher else None) or repo.owner
        for old, new, ref in updates:
            self.on_ref_updated(repo, ref, old, new, sender)

    # ================================================================== issues & pull requests

    def _next_number(self, repo: Repository) -> int:
        return max(repo.issues, default=0) + 1

    def find_head_repo(self, base: Repository, head: str, head_repo: str | None) -> tuple[Repository | None, str]:
        """Resolve ``head`` (``branch`` or ``owner:branch``) to (repository, branch)."""
        if head_repo:
            owner, _, name = head_repo.partition("/")
            branch = head.split(":", 1)[1] if ":" in head else head
            return self.state.repo(owner, name), branch
        if ":" in head:
            owner, branch = head.split(":", 1)
            if owner.lower() == base.owner.login.lower():
                return base, branch
            network_root = base
            while network_root.fork_of is not None:
                network_root = network_root.fork_of
            for r in self.state.repos_by_id.values():
                if r.deleted or r.owner.login.lower() != owner.lower():
                    continue
                root = r
                while root.fork_of is not None:
                    root = root.fork_of
                if root is network_root:
                    return r, branch
            return None, branch
        return base, head

    def create_pull(
        self,
        repo: Repository,
        actor: Account,
        via_app: App | None,
        *,
        title: str | None,
        head: str | None,
        base: str | None,
        body: str | None,
        draft: bool,
        maintainer_can_modify: bool,
        head_repo: str | None = None,
    ) -> Issue:
        if not title:
            raise errors.missing_field("PullRequest", "title")
        if not head:
            raise errors.missing_field("PullRequest", "head")
        if not base:
            raise errors.missing_field("PullRequest", "base")
        with self.state.lock:
            head_repo_obj, head_ref = self.find_head_repo(repo, head, head_repo)
            snap = GitSnapshot()
            base_sha = snap.branch_sha(repo, base)
            if base_sha is None:
                raise errors.invalid_field("PullRequest", "base")
            head_sha = snap.branch_sha(head_repo_obj, head_ref) if head_repo_obj else None
            if head_repo_obj is None or head_sha is None:
                raise errors.invalid_field("PullRequest", "head")
            label = f"{head_repo_obj.owner.login}:{head_ref}"
            for other in repo.issues.values():
                if (
                    other.pr
                    and other.state == "open"
                    and other.pr.head_repo is head_repo_obj
                    and other.pr.head_ref == head_ref
                    and other.pr.base_ref == base
                ):
                    raise errors.validation(
                        [
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "message": f"A pull request already exists for {label}.",
                            }
                        ]
                    )
            if head_repo_obj is not repo and repo.git.object_type(head_sha) is None:
                repo.git.fetch_into(head_repo_obj.git, f"+{head_sha}:refs/emulator/incoming")
            if head_sha == base_sha or repo.git.is_ancestor(head_sha, base_sha):
                raise errors.validation(
                    [
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"No commits between {base} and {head_ref}",
                        }
                    ]
                )
            number = self._next_number(repo)
            issue_id, pr_id = self.state.next_id("issue"), self.state.next_id("pull")
            issue = Issue(
                id=issue_id,
                node_id=node_id("Issue", issue_id),
                repo=repo,
                number=number,
                title=title,
                body=body,
                user=actor,
                via_app=via_app,
            )
            issue.pr = PullRequestData(
                id=pr_id,
                node_id=node_id("PullRequest", pr_id),
                head_repo=head_repo_obj,
                head_ref=head_ref,
                base_ref=base,
                draft=draft,
                maintainer_can_modify=maintainer_can_modify,
            )
            repo.issues[number] = issue
            self._sync_pull_ref(issue, head_sha)
            self.emit(repo, "pull_request", "opened", actor, {"number": number, "pull_request": self.views.pull(issue)})
            return issue

    def _close(self, issue: Issue, actor: Account, via_app: App | None) -> None:
        issue.state = "closed"
        issue.closed_at = issue.updated_at = iso()
        issue.closed_by = actor
        if issue.pr is not None:
            self.emit(
                issue.repo,
                "pull_request",
                "closed",
                actor,
                {"number": issue.number, "pull_request": self.views.pull(issue)},
            )

    def update_issue(
        self,
        issue: Issue,
        actor: Account,
        via_app: App | None,
        *,
        title: Any = None,
        body: Any = ...,
        state: str | None = None,
        state_reason: str | None = None,
        base: str | None = None,
        maintainer_can_modify: bool | None = None,
        labels: list | None = None,
        assignees: list[str] | None = None,
    ) -> Issue:
        """PATCH of an issue or pull request (title, body, state, base, ...)."""
        with self.state.lock:
            changes: dict[str, Any] = {}
            if title is not None and str(title) != issue.title:
                changes["title"] = {"from": issue.title}
                issue.title = str(title)
            if body is not ... and body != issue.body:
                changes["body"] = {"from": issue.body or ""}
                issue.body = body
            if base is not None and issue.pr is not None and base != issue.pr.base_ref:
                snap = GitSnapshot()
                if snap.branch_sha(issue.repo, base) is None:
                    raise errors.invalid_field("PullRequest", "base")
                old_sha = snap.branch_sha(issue.repo, issue.pr.base_ref) or ""
                changes["base"] = {"ref": {"from": issue.pr.base_ref}, "sha": {"from": old_sha}}
                issue.pr.base_ref = base
            if maintainer_can_modify is not None and issue.pr is not None:
                issue.pr.maintainer_can_modify = bool(maintainer_can_modify)
            if assignees is not None:
                accs = []
                for login in assignees:
                    acc = self.state.account(login)
                    if acc is None:
                        raise errors.invalid_field("Issue", "assignees")
                    accs.append(acc)
                issue.assignees = accs
            if changes:
                issue.updated_at = iso()
                if issue.pr is not None:
                    self.emit(
                        issue.repo,
                        "pull_request",
                        "edited",
                        actor,
                        {"number": issue.number, "changes": changes, "pull_request": self.views.pull(issue)},
                    )
            if labels is not None:
                self.set_labels(issue, [lb if isinstance(lb, str) else lb.get("name") for lb in labels], actor, via_app)
            if state is not None and state != issue.state:
                if state == "closed":
                    issue.state_reason = state_reason or "completed" if issue.pr is None else None
                    self._close(issue, actor, via_app)
                elif state == "open":
                    if issue.pr is not None:
                        snap = GitSnapshot()
                        if snap.branch_sha(issue.pr.head_repo, issue.pr.head_ref) is None:
                            raise errors.validation(
                                [
                                    {
                                        "resource": "PullRequest",
                                        "code": "custom",
                                        "message": "state cannot be changed. The head branch has been deleted.",
                                    }
                                ]
                            )
                    issue.state = "open"
                    issue.state_reason = "reopened" if issue.pr is None else None
                    issue.closed_at = None
                    issue.closed_by = None
                    issue.updated_at = iso()
                    if issue.pr is not None:
                        head, _ = self.views.pr_shas(issue, GitSnapshot())
                        if head:
                            self._sync_pull_ref(issue, head)
                        self.emit(
                            issue.repo,
                            "pull_request",
                            "reopened",
                            actor,
                            {"number": issue.number, "pull_request": self.views.pull(issue)},
                        )
            return issue

    def set_draft(self, issue: Issue, draft: bool, actor: Account) -> None:
        """ "Convert to draft" / "Ready for review" (github.com buttons, GraphQL)."""
        if issue.pr is None:
            raise ApiError(404)
        with self.state.lock:
            if issue.pr.draft == draft:
                return
            issue.pr.draft = draft
            issue.updated_at = iso()
            self.emit(
                issue.repo,
                "pull_request",
                "converted_to_draft" if draft else "ready_for_review",
                actor,
                {"number": issue.number, "pull_request": self.views.pull(issue)},
            )
