"""What a REST handler sees and returns, and the handler registry.

A handler is registered for an ``operationId`` of the OpenAPI description:

    @handler("pulls/get")
    def get_pull(ctx: Ctx) -> Reply:
        issue = ctx.pull(ctx.repo(), ctx.params["pull_number"])
        return Reply(200, ctx.views.pull(issue, ctx.snap))

It returns values; the server renders them through the operation's response
schema for the status (and API version) and adds GitHub's headers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import errors
from .auth import AuthInfo
from .errors import ApiError
from .spec import Operation
from .state import Account, App, Issue, Repository
from .util import link_header
from .views.snapshot import GitSnapshot

if TYPE_CHECKING:
    from .core import Core

HANDLERS: dict[str, Callable[[Ctx], Reply]] = {}


def handler(operation_id: str):
    def register(fn):
        if operation_id in HANDLERS:
            raise RuntimeError(f"two handlers for {operation_id}")
        HANDLERS[operation_id] = fn
        return fn

    return register


@dataclass
class Reply:
    status: int
    value: Any = None  # rendered through the response schema
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is (e.g. a raw file)
    content_type: str | None = None


@dataclass
class Ctx:
    core: Core
    op: Operation
    method: str
    path: str
    params: dict[str, Any]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    auth: AuthInfo
    version: str
    snap: GitSnapshot = field(default_factory=GitSnapshot)

    # ------------------------------------------------------------------ shortcuts

    @property
    def state(self):
        return self.core.state

    @property
    def views(self):
        return self.core.views

    @property
    def domain(self):
        return self.core.domain

    @property
    def base(self) -> str:
        return self.core.base_url

    @property
    def body_dict(self) -> dict:
        return self.json if isinstance(self.json, dict) else {}

    @property
    def actor(self) -> Account:
        """Who acts: the app's bot user for an installation token."""
        if self.auth.kind == "installation":
            return self.auth.app_required.bot
        raise ApiError(401, "Requires authentication")

    @property
    def via_app(self) -> App | None:
        return self.auth.app if self.auth.kind == "installation" else None

    # ------------------------------------------------------------------ lookups with GitHub's access rules

    def can_read(self, repo: Repository) -> bool:
        return self.auth.can_read(repo)

    def in_scope(self, repo: Repository) -> bool:
        return self.auth.covers(repo)

    def repo(
        self, owner: str | None = None, name: str | None = None, write: bool | None = None, allow_archived: bool = False
    ) -> Repository:
        """The repository of the path, or 404 when it is absent or hidden from the
        caller. For writes (default: any non-GET), the installation must cover it
        (else 403 on a visible repository, as GitHub does)."""
        owner = owner if owner is not None else self.params["owner"]
        name = name if name is not None else self.params["repo"]
        repo = self.state.repo(owner, name)
        if repo is None or not self.can_read(repo):
            raise errors.not_found()
        if write is None:
            write = self.method != "GET"
        if write:
            if self.auth.kind == "none":
                raise ApiError(401, "Requires authentication")
            if not self.in_scope(repo):
                raise errors.forbidden_integration()
            if repo.archived and not allow_archived:
                raise ApiError(403, "Repository was archived so is read-only.")
        return repo

    def issue(self, repo: Repository, number: int) -> Issue:
        issue = repo.issues.get(number)
        if issue is None:
            raise errors.not_found()
        return issue

    def pull(self, repo: Repository, number: int) -> Issue:
        issue = repo.issues.get(number)
        if issue is None or issue.pr is None:
            raise errors.not_found()
        return issue

    def account(self, login: str) -> Account:
        acc = self.state.account(login)
        if acc is None:
            raise errors.not_found()
        return acc

    # ------------------------------------------------------------------ query helpers

    def q_int(self, name: str, default: int) -> int:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise errors.validation([{"resource": "Search", "field": name, "code": "invalid"}]) from None

    def q_bool(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true", "yes")

    def paginate(self, items: list) -> tuple[list, dict[str, str]]:
        """Page-number pagination (``per_page`` 1-100, default 30; ``page`` from 1)
        with a GitHub-style ``Link`` header."""
        per_page = min(max(self.q_int("per_page", 30), 1), 100)
        page = max(self.q_int("page", 1), 1)
        start = (page - 1) * per_page
        chunk = items[start : start + per_page]
        query = {k: v for k, v in self.query.items() if k not in ("page", "per_page")}
        link = link_header(self.base, self.path, query, page, per_page, len(items))
        return chunk, ({"link": link} if link else {})
