"""``GitHubEmulator``: the public face of the emulator (see README.md).

with GitHubEmulator(root=tmp_path) as emu:      # serving on 127.0.0.1
    app = emu.register_app(slug="tandem", name="Tandem", webhook_secret="s3cret")
    emu.create_org("evals-org")
    repo = emu.create_repository("evals-org", "mlflow", files={"README.md": "hi\\n"})
    inst = emu.install_app("evals-org", repositories=["mlflow"])
    gh = GitHub(AppAuthStrategy(app.id, app.private_key_pem), base_url=emu.url)
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from .actions import AppActions, UserActions
from .core import Core, RecordedRequest
from .faults import Faults
from .manifests import create_app
from .secondary import SecondaryLimiter, SecondaryLimits
from .server import AsgiApp, ServerThread, bind_loopback
from .state import Account, App, Delivery, Installation, Issue, Repository, Team


class GitHubEmulator:
    def __init__(
        self,
        root: str | Path,
        *,
        installation_rate_limit: int = 5000,
        webhook_timeout: float = 10.0,
        workers: int = 32,
        cache_headers: bool = True,
        secondary_limits: SecondaryLimits | None = None,
    ):
        """``root``: where the bare git repositories live (e.g. pytest's ``tmp_path``).
        The loopback port is reserved now, so ``url`` is known before ``start()``.

        ``installation_rate_limit``: requests per hour per installation (GitHub: 5,000+).
        ``webhook_timeout``: seconds a delivery waits for the app (GitHub: 10).
        ``cache_headers``: send GitHub's ``ETag``/``Cache-Control: private, max-age=60``
        on GETs and answer ``If-None-Match`` with 304 (githubkit's HTTP cache
        revalidates every GET so; the 304s are free of rate limit, as on GitHub).
        ``secondary_limits``: enforce GitHub's secondary rate limits (``SecondaryLimits()``:
        GitHub's numbers; off by default, so tests are not slowed down)."""
        self._sock = bind_loopback()
        port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.root = Path(root)
        self.core = Core(
            self.root,
            self.url,
            installation_rate_limit=installation_rate_limit,
            webhook_timeout=webhook_timeout,
            cache_headers=cache_headers,
            secondary_limits=secondary_limits,
        )
        self._asgi = AsgiApp(self.core, workers=workers)
        self._server: ServerThread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> GitHubEmulator:
        """Serve on 127.0.0.1 in a background thread; returns once serving."""
        if self._server is not None:
            return self
        self.core.url_file.write_text(self.url)
        self.core.dispatcher.start()
        self._server = ServerThread(self._asgi, self._sock)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            self._sock.close()  # never started: release the reserved port
            return
        self.core.dispatcher.drain(timeout=5)
        self._server.stop()
        self._server = None
        self.core.dispatcher.stop()
        with contextlib.suppress(FileNotFoundError):
            self.core.url_file.unlink()

    def __enter__(self) -> GitHubEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ observation

    @property
    def faults(self) -> Faults:
        return self.core.faults

    @property
    def secondary_limits(self) -> SecondaryLimits | None:
        """GitHub's secondary rate limits, when enforced (None: only injected faults limit)."""
        return self.core.secondary.limits if self.core.secondary else None

    @secondary_limits.setter
    def secondary_limits(self, limits: SecondaryLimits | None) -> None:
        self.core.secondary = SecondaryLimiter(limits) if limits else None

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every API request received, in order (a snapshot)."""
        return self.core.requests

    def reset_requests(self) -> None:
        """Forget recorded requests and write counts."""
        self.core.reset_requests()

    def write_count(self, installation_id: int) -> int:
        """POST/PATCH/PUT/DELETE requests received with that installation's tokens
        (whatever their answer: GitHub counts attempts toward its limits too)."""
        return self.core.write_count(installation_id)

    @property
    def deliveries(self) -> list[Delivery]:
        with self.core.state.lock:
            return list(self.core.state.deliveries)

    def drain(self, timeout: float = 10) -> bool:
        """Block until every queued webhook delivery has been attempted."""
        return self.core.dispatcher.drain(timeout)

    @property
    def server_errors(self) -> list[str]:
        """Tracebacks of requests the emulator failed on (its own bugs; should stay empty)."""
        return list(self._asgi.errors)

    @property
    def render_problems(self) -> list[str]:
        """Values that did not fit their schema while rendering (should stay empty)."""
        return list(self.core.renderer.problems)

    # ------------------------------------------------------------------ apps

    def register_app(
        self,
        slug: str | None = None,
        name: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        events: list[str] | None = None,
        permissions: dict[str, str] | None = None,
        owner: str | None = None,
        description: str | None = None,
    ) -> App:
        """Register a GitHub App (RSA 2048 key generated). ``events`` defaults to
        issue_comment, pull_request, pull_request_review(_comment); installation
        events are always sent."""
        name = name or slug
        if name is None:
            raise ValueError("give a slug or a name")
        owner_acc = self._account(owner) if owner else None
        return create_app(
            self.core,
            slug=slug,
            name=name,
            owner=owner_acc,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            events=events,
            permissions=permissions,
            description=description,
        )

    def set_webhook(self, url: str | None, app: App | int | str | None = None) -> None:
        """Where deliveries go: for ``app`` (object, id or slug), or every registered app."""
        with self.core.state.lock:
            for a in [self._app(app)] if app is not None else list(self.core.state.apps.values()):
                a.webhook_url = url

    def manifest_code(self, manifest: dict, org: str | None = None) -> str:
        """Register the app a manifest describes, as after the web flow; returns
        the one-time code for ``POST /app-manifests/{code}/conversions``."""
        code, _ = self.core.manifests.create_code(manifest, org=org)
        return code

    # ------------------------------------------------------------------ accounts

    def create_user(self, login: str, type: str = "User", name: str | None = None, email: str | None = None) -> Account:
        return self.core.domain.create_account(login, type, name=name, email=email)

    def create_org(self, login: str, members: Iterable[str] = (), admins: Iterable[str] = ()) -> Account:
        org = self.core.domain.create_account(login, "Organization")
        for m in members:
            self.add_org_member(login, m)
        for m in admins:
            self.add_org_member(login, m, role="admin")
        return org

    def add_org_member(self, org: str, login: str, role: str = "member") -> None:
        self.core.domain.add_org_member(self._account(org), self._account(login), role)

    def create_team(
        self, org: str, name: str, members: Iterable[str] = (), maintainers: Iterable[str] = (), slug: str | None = None
    ) -> Team:
        return self.core.domain.create_team(
            self._account(org),
            name,
            slug=slug,
            members=[self._account(m) for m in members],
            maintainers=[self._account(m) for m in maintainers],
        )

    def add_collaborator(self, repo: str, login: str, permission: str = "write") -> None:
        """Give a user a role on a repository (read, triage, write, maintain, admin)."""
        if permission not in ("read", "triage", "write", "maintain", "admin"):
            raise ValueError(f"unknown permission {permission!r}")
        with self.core.state.lock:
            self.repo(repo).collaborators[self._account(login).login.lower()] = permission

    # ------------------------------------------------------------------ repositories

    def create_repository(
        self,
        owner: str,
        name: str,
        files: Mapping[str, str | bytes] | None = None,
        default_branch: str = "main",
        private: bool = False,
        description: str | None = None,
    ) -> Repository:
        """A bare git repository under ``root`` with one commit holding ``files``
        (no commit when ``files`` is empty)."""
        return self.core.domain.create_repository(
            self._account(owner), name, files, default_branch, private, description, None
        )

    def commit_files(
        self,
        repo: str,
        files: dict[str, str | bytes | None],
        branch: str = "main",
        message: str = "Update files",
        author: str | None = None,
    ) -> str:
        """Commit ``files`` (None deletes a path) on ``branch`` (created from the
        default branch if missing) as ``author`` (default: the owner). Sends
        ``synchronize`` for open pull requests whose head moved. Returns the sha."""
        r = self.repo(repo)
        who = self._account(author) if author else r.owner
        return self.core.domain.commit_files(r, files, branch, message, who)

    def repo(self, full_name: str) -> Repository:
        owner, _, name = full_name.partition("/")
        repo = self.core.state.repo(owner, name)
        if repo is None:
            raise KeyError(f"no repository {full_name}")
        return repo

    repository = repo  # alias

    def pull(self, full_name: str, number: int) -> Issue:
        issue = self.repo(full_name).issues.get(number)
        if issue is None or issue.pr is None:
            raise KeyError(f"no pull request {full_name}#{number}")
        return issue

    # ------------------------------------------------------------------ installations

    def install_app(
        self,
        account: str,
        repositories: list[str] | str = "all",
        app: App | int | str | None = None,
        sender: str | None = None,
    ) -> Installation:
        """Install the app on an org or user (``installation`` ``created``).
        ``repositories``: "all" or a list of repository names."""
        acc = self._account(account)
        repos = None
        if repositories != "all":
            repos = [self.repo(f"{acc.login}/{name}") for name in repositories]
        return self.core.domain.install(self._app(app), acc, repos, self._sender(acc, sender))

    def uninstall_app(self, installation_id: int, sender: str | None = None) -> None:
        inst = self._installation(installation_id)
        self.core.domain.uninstall(inst, self._sender(inst.account, sender))

    def suspend(self, installation_id: int, sender: str | None = None) -> None:
        inst = self._installation(installation_id)
        self.core.domain.suspend(inst, self._sender(inst.account, sender), True)

    def unsuspend(self, installation_id: int, sender: str | None = None) -> None:
        inst = self._installation(installation_id)
        self.core.domain.suspend(inst, self._sender(inst.account, sender), False)

    def add_installation_repositories(self, installation_id: int, names: list[str], sender: str | None = None) -> None:
        inst = self._installation(installation_id)
        self.core.domain.change_installation_repos(
            inst, [self.repo(f"{inst.account.login}/{n}") for n in names], [], self._sender(inst.account, sender)
        )

    def remove_installation_repositories(
        self, installation_id: int, names: list[str], sender: str | None = None
    ) -> None:
        inst = self._installation(installation_id)
        self.core.domain.change_installation_repos(
            inst, [], [self.repo(f"{inst.account.login}/{n}") for n in names], self._sender(inst.account, sender)
        )

    def revoke_installation_tokens(self, installation_id: int | None = None) -> int:
        """Outstanding installation tokens (of one installation, or all) now get 401."""
        return self.core.auth.revoke_all(installation_id)

    # ------------------------------------------------------------------ people and webhooks

    def as_user(self, login: str) -> UserActions:
        return UserActions(self.core, login)

    def as_app(self, app: App | int | str) -> AppActions:
        """Act as another installed app (a CI service): check runs and commit statuses."""
        return AppActions(self.core, self._app(app))

    def deliver(
        self, event: str, payload: dict | bytes, delivery_id: str | None = None, app: App | int | str | None = None
    ) -> Delivery:
        """Send ``payload`` as is (e.g. a fixture file's JSON), signed, to the app's
        webhook URL, after any deliveries already queued."""
        target = self._app(app)
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        data = json.loads(body)
        inst = data.get("installation") if isinstance(data, dict) else None
        repo = data.get("repository") if isinstance(data, dict) else None
        delivery = self.core.dispatcher.build(
            target,
            event,
            data.get("action") if isinstance(data, dict) else None,
            {},
            inst.get("id") if isinstance(inst, dict) else None,
            repo.get("id") if isinstance(repo, dict) else None,
            delivery_guid=delivery_id,
            raw_body=body,
        )
        return self.core.dispatcher.enqueue(delivery)

    # ------------------------------------------------------------------ internals

    def _account(self, login: str) -> Account:
        acc = self.core.state.account(login)
        if acc is None:
            raise KeyError(f"no account {login!r}")
        return acc

    def _app(self, app: App | int | str | None) -> App:
        apps = self.core.state.apps
        if isinstance(app, App):
            return app
        if isinstance(app, int):
            return apps[app]
        if isinstance(app, str):
            return self.core.state.apps_by_slug[app]
        if len(apps) != 1:
            raise ValueError(f"{len(apps)} apps registered: say which one")
        return next(iter(apps.values()))

    def _installation(self, installation_id: int) -> Installation:
        inst = self.core.state.installations.get(installation_id)
        if inst is None or inst.deleted:
            raise KeyError(f"no installation {installation_id}")
        return inst

    def _sender(self, account: Account, login: str | None) -> Account:
        """Who clicked: the given user, else an org admin, a member, the user
        account itself, or (for an org with no members) the org."""
        if login:
            return self._account(login)
        if not account.is_org:
            return account
        for role in ("admin", "member"):
            for member, r in account.members.items():
                if r == role and (found := self.core.state.account(member)) is not None:
                    return found
        return account

    def __repr__(self) -> str:
        return f"<GitHubEmulator {self.url} root={self.root}>"
