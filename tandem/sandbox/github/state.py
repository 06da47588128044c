"""The emulator's in-memory model of GitHub.

Plain dataclasses, held by ``State``. One re-entrant lock (``State.lock``)
guards every mutation and every multi-object read; handlers take it, copy what
they need into values (``views/``) and render outside it. Git data is not
here: it lives in each repository's bare git directory (``gitrepo.py``).

Logins, org names and repository names are case-insensitive on GitHub, so the
maps are keyed by lower-case names while the objects keep the original case.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from .gitrepo import GitRepo
from .util import iso, node_id


@dataclass(eq=False)
class Account:
    """A user, a bot or an organization (GitHub's ``simple-user``)."""

    id: int
    login: str
    type: str  # "User" | "Bot" | "Organization"
    node_id: str
    name: str | None = None
    email: str | None = None
    created_at: str = field(default_factory=iso)
    site_admin: bool = False
    # organizations only
    members: dict[str, str] = field(default_factory=dict)  # login.lower() -> "admin" | "member"
    teams: dict[str, Team] = field(default_factory=dict)  # slug -> team
    # bots only: the app behind the bot user
    app: App | None = None

    @property
    def is_org(self) -> bool:
        return self.type == "Organization"


@dataclass(eq=False)
class Team:
    id: int
    node_id: str
    org: Account
    slug: str
    name: str
    description: str | None = None
    privacy: str = "closed"
    permission: str = "pull"
    members: dict[str, str] = field(default_factory=dict)  # login.lower() -> "member" | "maintainer"


@dataclass(eq=False)
class App:
    id: int
    slug: str
    name: str
    node_id: str
    owner: Account
    client_id: str
    client_secret: str
    webhook_secret: str | None
    webhook_url: str | None
    private_key_pem: str
    public_key: Any
    events: list[str]
    permissions: dict[str, str]
    bot: Account
    hook_id: int
    description: str | None = None
    external_url: str = ""
    created_at: str = field(default_factory=iso)
    updated_at: str = field(default_factory=iso)

    @property
    def bot_login(self) -> str:
        return self.bot.login

    @property
    def bot_id(self) -> int:
        return self.bot.id


@dataclass(eq=False)
class Installation:
    id: int
    app: App
    account: Account
    repository_selection: str  # "all" | "selected"
    repo_ids: set[int]  # when "selected"
    permissions: dict[str, str]
    events: list[str]
    created_at: str = field(default_factory=iso)
    updated_at: str = field(default_factory=iso)
    suspended_at: str | None = None
    suspended_by: Account | None = None
    deleted: bool = False

    @property
    def node_id(self) -> str:
        return node_id("Installation", self.id)


@dataclass(eq=False)
class Token:
    token: str
    installation: Installation
    expires_at: float
    permissions: dict[str, str]
    repo_ids: set[int] | None  # None: every repository of the installation
    revoked: bool = False


@dataclass(eq=False)
class Label:
    id: int
    node_id: str
    name: str
    color: str
    description: str | None = None
    default: bool = False


@dataclass(eq=False)
class Reaction:
    id: int
    node_id: str
    user: Account
    content: str
    created_at: str = field(default_factory=iso)


@dataclass(eq=False)
class IssueComment:
    id: int
    node_id: str
    repo: Repository
    issue_number: int
    user: Account
    body: str
    created_at: str = field(default_factory=iso)
    updated_at: str = field(default_factory=iso)
    via_app: App | None = None
    reactions: list[Reaction] = field(default_factory=list)


@dataclass(eq=False)
class PullRequestData:
    """What a pull request adds to its issue."""

    id: int
    node_id: str
    head_repo: Repository
    head_ref: str
    base_ref: str
    draft: bool
    maintainer_can_modify: bool = False
    requested_reviewers: list[Account] = field(default_factory=list)
    requested_teams: list[Team] = field(default_factory=list)
    last_head_sha: str | None = None  # to notice pushes (``synchronize``)


@dataclass(eq=False)
class Issue:
    """An issue or, with ``pr`` set, a pull request (they share numbers)."""

    id: int
    node_id: str
    repo: Repository
    number: int
    title: str
    body: str | None
    user: Account
    state: str = "open"
    state_reason: str | None = None
    labels: list[Label] = field(default_factory=list)
    assignees: list[Account] = field(default_factory=list)
    locked: bool = False
    created_at: str = field(default_factory=iso)
    updated_at: str = field(default_factory=iso)
    closed_at: str | None = None
    closed_by: Account | None = None
    via_app: App | None = None
    comment_count: int = 0
    review_comment_count: int = 0
    pr: PullRequestData | None = None

    @property
    def pull_request(self) -> PullRequestData:
        """``pr``, of an issue already found to be a pull request."""
        if self.pr is None:
            raise ValueError(f"#{self.number} is an issue, not a pull request")
        return self.pr


@dataclass(eq=False)
class Review:
    id: int
    node_id: str
    issue: Issue
    user: Account
    body: str
    state: str  # PENDING | COMMENTED | APPROVED | CHANGES_REQUESTED | DISMISSED
    commit_id: str | None
    submitted_at: str | None = None


@dataclass(eq=False)
class ReviewComment:
    id: int
    node_id: str
    issue: Issue
    review_id: int | None
    user: Account
    body: str
    path: str
    commit_id: str
    original_commit_id: str
    diff_hunk: str
    line: int | None
    side: str
    position: int | None = None  # line index in the file's diff (deprecated API field)
    start_line: int | None = None
    start_side: str | None = None
    subject_type: str = "line"
    in_reply_to_id: int | None = None
    created_at: str = field(default_factory=iso)
    updated_at: str = field(default_factory=iso)
    reactions: list[Reaction] = field(default_factory=list)


@dataclass(eq=False)
class CheckRun:
    id: int
    node_id: str
    repo: Repository
    app: App
    head_sha: str
    name: str
    status: str = "queued"
    conclusion: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    external_id: str | None = None
    details_url: str | None = None
    output: dict = field(default_factory=dict)
    check_suite_id: int = 0


@dataclass(eq=False)
class Repository:
    id: int
    node_id: str
    owner: Account
    name: str
    private: bool
    default_branch: str
    git: GitRepo
    description: str | None = None
    homepage: str | None = None
    fork_of: Repository | None = None
    created_at: str = field(default_factory=iso)
    updated_at: str = field(default_factory=iso)
    pushed_at: str = field(default_factory=iso)
    archived: bool = False
    topics: list[str] = field(default_factory=list)
    has_issues: bool = True
    has_projects: bool = True
    has_wiki: bool = True
    has_discussions: bool = False
    allow_forking: bool = True
    is_template: bool = False
    labels: dict[str, Label] = field(default_factory=dict)  # name.lower() -> label
    issues: dict[int, Issue] = field(default_factory=dict)  # number -> issue or PR
    collaborators: dict[str, str] = field(default_factory=dict)  # login.lower() -> permission
    deleted: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"

    @property
    def git_dir(self):
        return self.git.git_dir

    @property
    def clone_url(self) -> str:
        return self.git.git_dir.resolve().as_uri()

    @property
    def visibility(self) -> str:
        return "private" if self.private else "public"


@dataclass(eq=False)
class Delivery:
    """One webhook delivery attempt (what ``GET /app/hook/deliveries`` lists)."""

    id: int
    guid: str
    app: App
    event: str
    action: str | None
    installation_id: int | None
    repository_id: int | None
    payload: dict
    body: bytes
    request_headers: dict[str, str]
    url: str | None
    redelivery: bool = False
    delivered_at: str | None = None
    duration: float = 0.0
    status: str = "pending"
    status_code: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


# Ids come from process-wide counters, one per kind, starting where GitHub's
# real ids are (so an id is never mistaken for a small index). They are unique
# across emulators in one process, as on GitHub: githubkit caches tokens and
# JWTs per app id and installation id process-wide, so two emulators reusing
# ids would make it send one emulator's token to the other.
_COUNTERS = {
    "account": itertools.count(1_000_001),
    "app": itertools.count(100_001),
    "installation": itertools.count(50_000_001),
    "repo": itertools.count(700_000_001),
    "issue": itertools.count(2_000_000_001),
    "pull": itertools.count(1_500_000_001),
    "comment": itertools.count(3_000_000_001),
    "review": itertools.count(2_400_000_001),
    "review_comment": itertools.count(1_900_000_001),
    "label": itertools.count(6_000_000_001),
    "reaction": itertools.count(290_000_001),
    "check_run": itertools.count(30_000_000_001),
    "check_suite": itertools.count(25_000_000_001),
    "status": itertools.count(37_000_000_001),
    "team": itertools.count(9_000_001),
    "hook": itertools.count(480_000_001),
    "delivery": itertools.count(90_000_000_001),
}
_COUNTERS_LOCK = threading.Lock()


def next_id(kind: str) -> int:
    with _COUNTERS_LOCK:
        return next(_COUNTERS[kind])


class State:
    """Every object, keyed for lookup."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}  # login.lower()
        self.accounts_by_id: dict[int, Account] = {}
        self.apps: dict[int, App] = {}
        self.apps_by_slug: dict[str, App] = {}
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, Token] = {}
        self.repos: dict[str, Repository] = {}  # full_name.lower()
        self.repos_by_id: dict[int, Repository] = {}
        self.issue_comments: dict[int, IssueComment] = {}
        self.reviews: dict[int, Review] = {}
        self.review_comments: dict[int, ReviewComment] = {}
        self.check_runs: dict[int, CheckRun] = {}
        self.commit_statuses: list[dict] = []  # as the status webhook shows them, oldest first
        self.deliveries: list[Delivery] = []
        self.deliveries_by_id: dict[int, Delivery] = {}

    def next_id(self, kind: str) -> int:
        return next_id(kind)

    # ------------------------------------------------------------------ lookups

    def account(self, login: str) -> Account | None:
        return self.accounts.get(login.lower())

    def repo(self, owner: str, name: str) -> Repository | None:
        repo = self.repos.get(f"{owner}/{name}".lower())
        return None if repo is None or repo.deleted else repo

    def installation_for_repo(self, app: App, repo: Repository) -> Installation | None:
        """The app's (live) installation that can see ``repo``, if any."""
        for inst in self.installations.values():
            sees = inst.repository_selection == "all" or repo.id in inst.repo_ids
            if inst.app is app and not inst.deleted and inst.account is repo.owner and sees:
                return inst
        return None

    def installation_repos(self, inst: Installation) -> list[Repository]:
        repos = [r for r in self.repos_by_id.values() if r.owner is inst.account and not r.deleted]
        if inst.repository_selection == "selected":
            repos = [r for r in repos if r.id in inst.repo_ids]
        return sorted(repos, key=lambda r: r.id)
