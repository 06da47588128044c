"""What happens on GitHub when someone changes something.

Each method here is one change as GitHub performs it: it validates like GitHub
(raising ``ApiError`` with GitHub's status and message), changes the state and
the git repositories, and queues the webhooks GitHub would send. REST
handlers (acting as an app's bot) and ``UserActions`` (acting as a person on
github.com) both call these, so an API call and a UI action have the same
effects.

Everything runs under ``State.lock`` so that the state a webhook body shows is
the state right after its change, and deliveries are queued in the order the
changes happened.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import errors
from .errors import ApiError
from .gitrepo import _ENV as GIT_ENV
from .gitrepo import ZERO_SHA, GitRepo, Person
from .state import (
    Account,
    App,
    CheckRun,
    Installation,
    Issue,
    IssueComment,
    Label,
    PullRequestData,
    Reaction,
    Repository,
    Review,
    ReviewComment,
    State,
    Team,
)
from .util import iso, node_id
from .views import GitSnapshot, Views
from .webhooks import ALWAYS_SENT, Dispatcher

DEFAULT_LABEL_COLOR = "ededed"
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")

POST_RECEIVE = """#!{python}
# Installed by the GitHub emulator: tell it about pushes, as GitHub's own
# receive hooks do, so it can send pull_request "synchronize" webhooks.
import json, os, sys, urllib.request
updates = [line.split() for line in sys.stdin.read().splitlines() if line.strip()]
try:
    with open({url_file!r}) as f:
        url = f.read().strip()
except OSError:
    sys.exit(0)
body = json.dumps({{"git_dir": {git_dir!r}, "updates": updates,
                   "pusher": os.environ.get("GITHUB_EMULATOR_PUSHER")}}).encode()
request = urllib.request.Request(url + "/_emulator/post-receive", data=body,
                                 headers={{"Content-Type": "application/json"}})
try:
    urllib.request.urlopen(request, timeout=60).read()
except Exception as exc:
    print("github-emulator: push not reported:", exc, file=sys.stderr)
"""


def noreply_email(acc: Account) -> str:
    return f"{acc.id}+{acc.login}@users.noreply.github.com"


def person(acc: Account, when: str | None = None) -> Person:
    return Person(name=acc.name or acc.login, email=acc.email or noreply_email(acc), date=when or iso())


class Domain:
    def __init__(self, state: State, views: Views, dispatcher: Dispatcher, root: Path, url_file: Path):
        self.state = state
        self.views = views
        self.hooks = dispatcher
        self.root = Path(root)
        self.url_file = url_file

    # ================================================================== webhooks

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

    # ================================================================== accounts

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

    # ================================================================== repositories

    def _install_hook(self, git: GitRepo) -> None:
        hook = git.git_dir / "hooks" / "post-receive"
        hook.parent.mkdir(exist_ok=True)
        hook.write_text(
            POST_RECEIVE.format(python=sys.executable, url_file=str(self.url_file), git_dir=str(git.git_dir.resolve()))
        )
        hook.chmod(0o755)

    def _new_repo_object(
        self, owner: Account, name: str, git: GitRepo, private: bool, default_branch: str, **kw
    ) -> Repository:
        ident = self.state.next_id("repo")
        repo = Repository(
            id=ident,
            node_id=node_id("Repository", ident),
            owner=owner,
            name=name,
            private=private,
            default_branch=default_branch,
            git=git,
            **kw,
        )
        self.state.repos[repo.full_name.lower()] = repo
        self.state.repos_by_id[ident] = repo
        return repo

    def create_repository(
        self,
        owner: Account,
        name: str,
        files: Mapping[str, str | bytes] | None,
        default_branch: str,
        private: bool,
        description: str | None,
        author: Account | None,
    ) -> Repository:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name) or name in (".", ".."):
            raise ValueError(f"invalid repository name: {name!r}")
        with self.state.lock:
            if self.state.repo(owner.login, name) is not None:
                raise ValueError(f"repository {owner.login}/{name} exists")
            git_dir = self.root / owner.login / f"{name}.git"
            if git_dir.exists():
                raise ValueError(f"{git_dir} exists")
            git = GitRepo.init_bare(git_dir, default_branch)
            self._install_hook(git)
            repo = self._new_repo_object(owner, name, git, private, default_branch, description=description)
        if files:
            self.commit_files(repo, files, default_branch, "Initial commit", author or owner, notify=False)
        return repo

    def commit_files(
        self,
        repo: Repository,
        files: Mapping[str, str | bytes | None],
        branch: str,
        message: str,
        author: Account,
        notify: bool = True,
        sender: Account | None = None,
    ) -> str:
        """Commit ``files`` ({path: str | bytes | None}) on top of ``branch``
        (created from the default branch when missing). Returns the new sha."""
        git = repo.git
        with git.lock:
            ref = f"refs/heads/{branch}"
            parent = git.ref_sha(ref)
            if parent is None and branch != repo.default_branch:
                parent = git.ref_sha(f"refs/heads/{repo.default_branch}")
            changes = []
            for path, content in files.items():
                path = path.strip("/")
                if content is None:
                    changes.append({"path": path, "sha": None})
                    continue
                data = content.encode() if isinstance(content, str) else bytes(content)
                changes.append({"path": path, "mode": "100644", "type": "blob", "sha": git.write_blob(data)})
            base_tree = git.tree_of(parent) if parent else None
            tree = git.build_tree(base_tree, changes)
            who = person(author)
            sha = git.commit_tree(
                tree, [parent] if parent else [], message if message.endswith("\n") else message + "\n", who, who
            )
            old = git.ref_sha(ref)
            git.update_ref(ref, sha, old or ZERO_SHA)
        if notify:
            self.on_ref_updated(repo, ref, old, sha, sender or author)
        with self.state.lock:
            repo.pushed_at = iso()
        return sha

    def fork(self, source: Repository, owner: Account, name: str | None, default_branch_only: bool) -> Repository:
        name = name or source.name
        with self.state.lock:
            existing = self.state.repo(owner.login, name)
            if existing is not None:
                if existing.fork_of is source:
                    return existing  # GitHub answers 202 with the existing fork
                raise errors.custom("Repository", "name", "name already exists on this account")
            git_dir = self.root / owner.login / f"{name}.git"
            args = ["git", "clone", "--quiet", "--bare"]
            if default_branch_only:
                args += ["--single-branch", "--branch", source.default_branch]
            with source.git.lock:
                subprocess.run([*args, str(source.git_dir), str(git_dir)], check=True, capture_output=True, env=GIT_ENV)
            git = GitRepo(git_dir)
            git.configure()
            self._install_hook(git)
            repo = self._new_repo_object(
                owner, name, git, source.private, source.default_branch, description=source.description, fork_of=source
            )
            return repo

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

    # ---------------------------------------------------------------- reviewers

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

    # ---------------------------------------------------------------- labels

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

    # ---------------------------------------------------------------- issue comments

    def create_comment(self, issue: Issue, actor: Account, via_app: App | None, body: Any) -> IssueComment:
        if not isinstance(body, str) or not body:
            raise errors.missing_field("IssueComment", "body")
        if len(body) > 65536:
            raise errors.validation(
                [
                    {
                        "resource": "IssueComment",
                        "code": "custom",
                        "field": "body",
                        "message": "body is too long (maximum is 65536 characters)",
                    }
                ]
            )
        with self.state.lock:
            if issue.locked and actor.type != "Bot":
                raise ApiError(403, "Unable to create comment because issue is locked.")
            ident = self.state.next_id("comment")
            comment = IssueComment(
                id=ident,
                node_id=node_id("IssueComment", ident),
                repo=issue.repo,
                issue_number=issue.number,
                user=actor,
                body=body,
                via_app=via_app,
            )
            self.state.issue_comments[ident] = comment
            issue.comment_count += 1
            issue.updated_at = comment.created_at
            self.emit(
                issue.repo,
                "issue_comment",
                "created",
                actor,
                {"issue": self.views.issue(issue), "comment": self.views.comment(comment)},
            )
            return comment

    def update_comment(self, comment: IssueComment, actor: Account, body: Any) -> IssueComment:
        if not isinstance(body, str) or not body:
            raise errors.missing_field("IssueComment", "body")
        with self.state.lock:
            if body == comment.body:
                return comment
            old = comment.body
            comment.body = body
            comment.updated_at = iso()
            issue = comment.repo.issues[comment.issue_number]
            self.emit(
                comment.repo,
                "issue_comment",
                "edited",
                actor,
                {
                    "changes": {"body": {"from": old}},
                    "issue": self.views.issue(issue),
                    "comment": self.views.comment(comment),
                },
            )
            return comment

    def delete_comment(self, comment: IssueComment, actor: Account) -> None:
        with self.state.lock:
            if self.state.issue_comments.pop(comment.id, None) is None:
                raise errors.not_found()
            issue = comment.repo.issues[comment.issue_number]
            issue.comment_count -= 1
            self.emit(
                comment.repo,
                "issue_comment",
                "deleted",
                actor,
                {"issue": self.views.issue(issue), "comment": self.views.comment(comment)},
            )

    def add_reaction(self, target: IssueComment | ReviewComment, actor: Account, content: str) -> tuple[Reaction, bool]:
        if content not in REACTIONS:
            raise errors.invalid_field("Reaction", "content")
        with self.state.lock:
            for r in target.reactions:
                if r.user is actor and r.content == content:
                    return r, False
            ident = self.state.next_id("reaction")
            reaction = Reaction(id=ident, node_id=node_id("Reaction", ident), user=actor, content=content)
            target.reactions.append(reaction)
            return reaction, True

    # ---------------------------------------------------------------- reviews

    def _head_sha(self, issue: Issue) -> str:
        head, _ = self.views.pr_shas(issue, GitSnapshot())
        if head is None:  # refs/pull/N/head, kept from the pull request's opening on, is its fallback
            raise RuntimeError(f"pull request #{issue.number} has no head commit")
        return head

    def create_review(
        self,
        issue: Issue,
        actor: Account,
        via_app: App | None,
        *,
        body: str | None,
        event: str | None,
        commit_id: str | None,
        comments: list[dict] | None,
    ) -> Review:
        state_for = {
            "APPROVE": "APPROVED",
            "REQUEST_CHANGES": "CHANGES_REQUESTED",
            "COMMENT": "COMMENTED",
            None: "PENDING",
            "": "PENDING",
        }
        if event not in state_for:
            raise errors.invalid_field("PullRequestReview", "event")
        body = body or ""
        with self.state.lock:
            if event in ("APPROVE", "REQUEST_CHANGES") and issue.user is actor:
                verb = "approve" if event == "APPROVE" else "request changes on"
                raise errors.validation(
                    message="Unprocessable Entity", errors=[f"Review Can not {verb} your own pull request"]
                )
            if event == "REQUEST_CHANGES" and not body:
                raise errors.validation(
                    message="Unprocessable Entity", errors=["Body is required when using REQUEST_CHANGES"]
                )
            if event == "COMMENT" and not body and not comments:
                raise errors.validation(message="Unprocessable Entity", errors=["Body is required when using COMMENT"])
            if state_for[event] == "PENDING" and any(
                r.issue is issue and r.user is actor and r.state == "PENDING" for r in self.state.reviews.values()
            ):
                raise errors.validation(
                    message="Unprocessable Entity", errors=["User can only have one pending review per pull request"]
                )
            head = self._head_sha(issue)
            ident = self.state.next_id("review")
            review = Review(
                id=ident,
                node_id=node_id("PullRequestReview", ident),
                issue=issue,
                user=actor,
                body=body,
                state=state_for[event],
                commit_id=commit_id or head,
            )
            new_comments = [
                self._new_review_comment(issue, actor, review.id, c, review.commit_id) for c in comments or []
            ]
            self.state.reviews[ident] = review
            for c in new_comments:
                self.state.review_comments[c.id] = c
                issue.review_comment_count += 1
            if review.state != "PENDING":
                self._submit(review, actor, new_comments)
            return review

    def _submit(self, review: Review, actor: Account, comments: list[ReviewComment]) -> None:
        issue = review.issue
        review.submitted_at = iso()
        issue.updated_at = review.submitted_at
        if actor in issue.pull_request.requested_reviewers:
            issue.pull_request.requested_reviewers.remove(actor)
        for c in comments:
            self.emit(
                issue.repo,
                "pull_request_review_comment",
                "created",
                actor,
                {"comment": self.views.review_comment(c), "pull_request": self.views.pull(issue, full=False)},
            )
        self.emit(
            issue.repo,
            "pull_request_review",
            "submitted",
            actor,
            {"review": self.views.review(review), "pull_request": self.views.pull(issue, full=False)},
        )

    def submit_pending_review(self, review: Review, actor: Account, event: str, body: str | None) -> Review:
        with self.state.lock:
            if review.state != "PENDING":
                raise errors.validation(message="Unprocessable Entity", errors=["Can not submit a non-pending review"])
            review.state = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}[
                event
            ]
            if body:
                review.body = body
            comments = [c for c in self.state.review_comments.values() if c.review_id == review.id]
            self._submit(review, actor, comments)
            return review

    def update_review(self, review: Review, actor: Account, body: str) -> Review:
        with self.state.lock:
            old = review.body
            review.body = body
            if review.state != "PENDING" and old != body:
                self.emit(
                    review.issue.repo,
                    "pull_request_review",
                    "edited",
                    actor,
                    {
                        "changes": {"body": {"from": old}},
                        "review": self.views.review(review),
                        "pull_request": self.views.pull(review.issue, full=False),
                    },
                )
            return review

    def delete_pending_review(self, review: Review) -> Review:
        with self.state.lock:
            if review.state != "PENDING":
                raise errors.validation(
                    message="Unprocessable Entity", errors=["Can not delete a non-pending pull request review"]
                )
            self.state.reviews.pop(review.id, None)
            for c in [c for c in self.state.review_comments.values() if c.review_id == review.id]:
                self.state.review_comments.pop(c.id, None)
                review.issue.review_comment_count -= 1
            return review

    # ---------------------------------------------------------------- review comments

    def _diff_hunk(
        self, issue: Issue, path: str, line: int | None, side: str, commit: str, position: int | None = None
    ) -> tuple[str, int, int, str]:
        """Find a commented line in the file's diff, by ``line``/``side`` or by
        ``position`` (lines below the first ``@@``, the deprecated way).
        Returns (the diff hunk up to that line, as GitHub shows above a review
        comment; its position; its line; its side). 422 when it is not in the diff."""
        repo = issue.repo
        _, base = self.views.pr_shas(issue, GitSnapshot())
        merge_base = repo.git.merge_base(base, commit) if base else None
        if merge_base is None:
            raise errors.validation(
                message="Unprocessable Entity", errors=["pull_request_review_thread.path diff not available"]
            )
        diff = repo.git.text("diff", "--no-renames", "--no-color", merge_base, commit, "--", path)
        if not diff:
            raise errors.validation(
                message="Unprocessable Entity",
                errors=["pull_request_review_thread.path diff too large or file not changed"],
            )
        lines = diff.splitlines()
        first_hunk = next((i for i, t in enumerate(lines) if t.startswith("@@")), 0)
        hunk_start, old_no, new_no = None, 0, 0
        for i, text in enumerate(lines):
            m = re.match(r"@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@", text)
            if m:
                hunk_start, old_no, new_no = i, int(m.group(1)), int(m.group(2))
                continue
            if hunk_start is None:
                continue
            if text.startswith("+"):
                here = (new_no, "RIGHT")
                new_no += 1
            elif text.startswith("-"):
                here = (old_no, "LEFT")
                old_no += 1
            elif text.startswith("\\"):
                continue
            else:
                here = (new_no, "RIGHT") if side == "RIGHT" else (old_no, "LEFT")
                old_no += 1
                new_no += 1
            if here == (line, side) or (position is not None and i - first_hunk == position):
                return "\n".join(lines[hunk_start : i + 1]), i - first_hunk, here[0], here[1]
        raise errors.validation(
            message="Unprocessable Entity", errors=["pull_request_review_thread.line must be part of the diff"]
        )

    def _new_review_comment(
        self, issue: Issue, actor: Account, review_id: int | None, spec: dict, commit_id: str | None
    ) -> ReviewComment:
        path = spec.get("path")
        if not path:
            raise errors.missing_field("PullRequestReviewComment", "path")
        body = spec.get("body")
        if not body:
            raise errors.missing_field("PullRequestReviewComment", "body")
        side = spec.get("side") or "RIGHT"
        commit = commit_id or self._head_sha(issue)
        subject_type = spec.get("subject_type") or "line"
        line = spec.get("line")
        position = None
        if subject_type == "file":
            hunk, line = "", None
        else:
            by_position = int(spec["position"]) if line is None and spec.get("position") is not None else None
            if line is None and by_position is None:
                raise errors.missing_field("PullRequestReviewComment", "line")
            hunk, position, line, side = self._diff_hunk(
                issue, path, None if line is None else int(line), side, commit, by_position
            )
        ident = self.state.next_id("review_comment")
        return ReviewComment(
            id=ident,
            node_id=node_id("PullRequestReviewComment", ident),
            issue=issue,
            review_id=review_id,
            user=actor,
            body=body,
            path=path,
            commit_id=commit,
            original_commit_id=commit,
            diff_hunk=hunk,
            line=line,
            side=side,
            position=position,
            start_line=spec.get("start_line"),
            start_side=spec.get("start_side") if spec.get("start_line") else None,
            subject_type=subject_type,
        )

    def create_review_comment(self, issue: Issue, actor: Account, via_app: App | None, spec: dict) -> ReviewComment:
        """A single review comment: GitHub wraps it in a submitted COMMENTED review."""
        with self.state.lock:
            reply_to = spec.get("in_reply_to")
            commit: str | None
            if reply_to is not None:
                parent = self.state.review_comments.get(int(reply_to))
                if parent is None or parent.issue is not issue:
                    raise errors.not_found()
                spec = {
                    **spec,
                    "path": parent.path,
                    "line": parent.line,
                    "side": parent.side,
                    "subject_type": parent.subject_type,
                }
                commit = parent.commit_id
            else:
                commit = spec.get("commit_id")
            if commit is not None and issue.repo.git.object_type(commit) != "commit":
                raise errors.invalid_field("PullRequestReviewComment", "commit_id")
            ident = self.state.next_id("review")
            review = Review(
                id=ident,
                node_id=node_id("PullRequestReview", ident),
                issue=issue,
                user=actor,
                body="",
                state="COMMENTED",
                commit_id=commit or self._head_sha(issue),
            )
            comment = self._new_review_comment(issue, actor, review.id, spec, commit)
            if reply_to is not None and parent is not None:
                comment.in_reply_to_id = int(reply_to)
                comment.diff_hunk = parent.diff_hunk
            self.state.reviews[ident] = review
            self.state.review_comments[comment.id] = comment
            issue.review_comment_count += 1
            self._submit(review, actor, [comment])
            return comment

    def update_review_comment(self, comment: ReviewComment, actor: Account, body: str) -> ReviewComment:
        if not body:
            raise errors.missing_field("PullRequestReviewComment", "body")
        with self.state.lock:
            old = comment.body
            if old == body:
                return comment
            comment.body = body
            comment.updated_at = iso()
            self.emit(
                comment.issue.repo,
                "pull_request_review_comment",
                "edited",
                actor,
                {
                    "changes": {"body": {"from": old}},
                    "comment": self.views.review_comment(comment),
                    "pull_request": self.views.pull(comment.issue, full=False),
                },
            )
            return comment

    def delete_review_comment(self, comment: ReviewComment, actor: Account) -> None:
        with self.state.lock:
            if self.state.review_comments.pop(comment.id, None) is None:
                raise errors.not_found()
            comment.issue.review_comment_count -= 1
            self.emit(
                comment.issue.repo,
                "pull_request_review_comment",
                "deleted",
                actor,
                {
                    "comment": self.views.review_comment(comment),
                    "pull_request": self.views.pull(comment.issue, full=False),
                },
            )

    # ================================================================== checks

    def create_check_run(self, repo: Repository, app: App, fields: dict) -> CheckRun:
        name, head_sha = fields.get("name"), fields.get("head_sha")
        if not name:
            raise errors.missing_field("CheckRun", "name")
        if not head_sha:
            raise errors.missing_field("CheckRun", "head_sha")
        if repo.git.object_type(head_sha) != "commit":
            raise errors.validation(message="No commit found for SHA: " + head_sha)
        with self.state.lock:
            ident = self.state.next_id("check_run")
            suite = next(
                (
                    r.check_suite_id
                    for r in self.state.check_runs.values()
                    if r.repo is repo and r.app is app and r.head_sha == head_sha
                ),
                None,
            )
            run = CheckRun(
                id=ident,
                node_id=node_id("CheckRun", ident),
                repo=repo,
                app=app,
                head_sha=repo.git.resolve(head_sha) or head_sha,
                name=name,
                check_suite_id=suite or self.state.next_id("check_suite"),
            )
            self._apply_check_fields(run, fields)
            self.state.check_runs[ident] = run
            # "created" and "completed" go to every app subscribed to check_run (a CI app's runs
            # reach the others); "rerequested" and "requested_action" would go to the owner only.
            self.emit(repo, "check_run", "created", app.bot, {"check_run": self.views.check_run(run)})
            return run

    def update_check_run(self, run: CheckRun, fields: dict) -> CheckRun:
        with self.state.lock:
            was_completed = run.status == "completed"
            self._apply_check_fields(run, fields)
            if run.status == "completed" and not was_completed:
                self.emit(run.repo, "check_run", "completed", run.app.bot, {"check_run": self.views.check_run(run)})
                self._suite_completed(run)
            return run

    def _suite_completed(self, run: CheckRun) -> None:
        """``check_suite`` ``completed`` once every run of the suite has completed, with the
        conclusion GitHub gives a suite: the first failing one, else success (or neutral)."""
        runs = [r for r in self.state.check_runs.values() if r.check_suite_id == run.check_suite_id]
        if any(r.status != "completed" for r in runs):
            return
        conclusions = [r.conclusion for r in runs]
        failing = [c for c in conclusions if c not in ("success", "neutral", "skipped")]
        conclusion = failing[0] if failing else ("success" if "success" in conclusions else "neutral")
        suite = {
            "id": run.check_suite_id,
            "head_sha": run.head_sha,
            "status": "completed",
            "conclusion": conclusion,
            "app": self.views.integration(run.app),
            "created_at": min(r.started_at or iso() for r in runs),
            "updated_at": iso(),
            "latest_check_runs_count": len(runs),
            "pull_requests": [],
        }
        self.emit(run.repo, "check_suite", "completed", run.app.bot, {"check_suite": suite})

    @staticmethod
    def _apply_check_fields(run: CheckRun, fields: dict) -> None:
        for key in ("name", "details_url", "external_id", "started_at"):
            if key in fields:
                setattr(run, key, fields[key])
        if "output" in fields and isinstance(fields["output"], dict):
            run.output = {**run.output, **fields["output"]}
        status = fields.get("status")
        conclusion = fields.get("conclusion")
        if conclusion is not None or fields.get("completed_at"):
            if conclusion is None:
                raise errors.missing_field("CheckRun", "conclusion")
            status = "completed"
        if status == "completed" and conclusion is None and run.conclusion is None:
            raise errors.missing_field("CheckRun", "conclusion")
        if status is not None:
            run.status = status
        if conclusion is not None:
            run.conclusion = conclusion
        if run.status in ("in_progress", "completed") and not run.started_at:
            run.started_at = iso()
        if run.status == "completed":
            run.completed_at = fields.get("completed_at") or run.completed_at or iso()
        elif run.started_at is None and run.status == "queued" and "started_at" not in fields:
            run.started_at = iso()

    # ================================================================== installations

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
