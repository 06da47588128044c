"""Tests of the GitHub emulator itself (tandem/sandbox/github).

The emulator is only useful if it is faithful, so these tests hold it to
GitHub's own descriptions: every response is parsed by githubkit's typed
models (generated from the 2026-03-10 description) *and* validated with
jsonschema against the OpenAPI description of the API version it was asked
for; every webhook body against the ``x-webhooks`` schema and githubkit's
webhook models, and its top-level keys against GitHub's real example payloads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import httpx
import jwt
import pytest
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import PrimaryRateLimitExceeded, RequestFailed, SecondaryRateLimitExceeded
from githubkit.webhooks import parse as parse_webhook

from tandem.sandbox.github import GitHubEmulator, SecondaryLimits, oas, spec
from tandem.sandbox.github.api import HANDLERS
from tandem.sandbox.github.receiver import WebhookReceiver

FIXTURES = Path(__file__).parent / "fixtures" / "webhook-payloads"
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Octo Cat",
    "GIT_AUTHOR_EMAIL": "octocat@example.com",
    "GIT_COMMITTER_NAME": "Octo Cat",
    "GIT_COMMITTER_EMAIL": "octocat@example.com",
}


PERMISSIONS = {
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "checks": "write",
    "members": "read",
    "administration": "write",
    "metadata": "read",
}


# ============================================================================ schema checking


class SchemaChecker:
    """Validates raw response bodies against the description of their API version."""

    def __init__(self) -> None:
        self.docs = {v: spec.load_raw(v) for v in spec.VERSIONS}
        self.validators = {v: oas.Validators(doc) for v, doc in self.docs.items()}

    def response_schema(self, version: str, method: str, path: str, status: int):
        op, _, _ = spec.load(version).match(method, path)
        assert op is not None, f"no operation for {method} {path}"
        raw_op = self.docs[version]["paths"][op.path][method.lower()]
        response = raw_op["responses"].get(str(status))
        assert response is not None, f"{op.operation_id} ({version}) does not document status {status}"
        if "$ref" in response:
            response = self.docs[version]["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        return op, response.get("content", {}).get("application/json", {}).get("schema")

    def check(self, response: httpx.Response) -> None:
        request = response.request
        version = request.headers.get("x-github-api-version", spec.DEFAULT_VERSION)
        assert response.headers["x-github-api-version-selected"] == version
        path = request.url.raw_path.decode().split("?", 1)[0]
        op, schema = self.response_schema(version, request.method, path, response.status_code)
        if schema is None:
            assert response.content == b"", f"{op.operation_id}: body where none is documented"
            return
        assert response.headers["content-type"].startswith("application/json")
        validator = self.validators[version].validator(schema, formats=True)
        errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.absolute_path))
        assert not errors, f"{op.operation_id} ({version}): " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:5]
        )

    def check_webhook(self, event: str, body: bytes) -> dict:
        payload = json.loads(body)
        key = event.replace("_", "-") + ("-" + payload["action"].replace("_", "-") if "action" in payload else "")
        item = self.docs["2022-11-28"]["x-webhooks"][key]
        schema = item["post"]["requestBody"]["content"]["application/json"]["schema"]
        errors = list(self.validators["2022-11-28"].validator(schema, formats=True).iter_errors(payload))
        assert not errors, f"{key}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:5]
        )
        parse_webhook(event, body)  # githubkit's typed webhook models
        return payload


@pytest.fixture(scope="session")
def checker() -> SchemaChecker:
    return SchemaChecker()


def ok(checker: SchemaChecker, response, status: int | None = None):
    """Assert a githubkit response is valid; return its parsed model (or None)."""
    raw = response.raw_response if hasattr(response, "raw_response") else response
    if status is not None:
        assert raw.status_code == status, raw.text
    checker.check(raw)
    if raw is not response and raw.content:
        return response.parsed_data
    return None


# ============================================================================ fixtures


class World:
    """An emulator with an app installed on an org that has a repository."""

    def __init__(self, root: Path, webhook_url: str | None = None):
        self.emu = GitHubEmulator(root=root).start()
        emu = self.emu
        self.app = emu.register_app(
            slug="tandem", name="Tandem", webhook_url=webhook_url, webhook_secret="s3cret", permissions=PERMISSIONS
        )
        emu.create_user("octocat", name="The Octocat")
        emu.create_user("hubot")
        emu.create_org("evals-org", members=["octocat", "hubot"])
        emu.create_team("evals-org", "raters", members=["octocat"])
        self.repo = emu.create_repository(
            "evals-org",
            "mlflow",
            files={"README.md": "hi\n", "src/app.py": "import os\n\n\ndef main():\n    return os.environ\n"},
        )
        emu.create_repository("evals-org", "other", files={"x.txt": "x\n"})
        self.inst = emu.install_app("evals-org", repositories=["mlflow"])
        self.app_gh = self.client(AppAuthStrategy(self.app.id, self.app.private_key_pem))
        self.gh = self.client(AppInstallationAuthStrategy(self.app.id, self.app.private_key_pem, self.inst.id))

    def client(self, auth) -> GitHub:
        return GitHub(auth, base_url=self.emu.url, http_cache=False, auto_retry=False)

    def jwt(self, **overrides) -> str:
        now = int(time.time())
        claims = {"iat": now - 60, "exp": now + 540, "iss": str(self.app.id), **overrides}
        # (PyJWS directly: PyJWT's encode refuses an integer ``iss``, which GitHub accepts)
        return jwt.api_jws.encode(json.dumps(claims).encode(), self.app.private_key_pem, algorithm="RS256")

    def token(self) -> str:
        r = httpx.post(
            f"{self.emu.url}/app/installations/{self.inst.id}/access_tokens",
            headers={"Authorization": f"Bearer {self.jwt()}"},
        )
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def stop(self) -> None:
        assert not self.emu.server_errors, self.emu.server_errors[0]
        assert not self.emu.render_problems, self.emu.render_problems[:5]
        self.emu.stop()


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.stop()


@pytest.fixture
def hooks():
    with WebhookReceiver() as receiver:
        yield receiver


def git(*args: str, cwd: Path | None = None, env: dict | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env={**GIT_ENV, **(env or {})}
    ).stdout.strip()


# ============================================================================ every endpoint


def test_every_endpoint_parses_and_matches_its_schema(tmp_path, checker, hooks):
    w = World(tmp_path, webhook_url=hooks.url)
    emu, gh, app_gh = w.emu, w.gh, w.app_gh
    ORG, R = "evals-org", "mlflow"

    # --- the app (JWT)
    me = ok(checker, app_gh.rest.apps.get_authenticated(), 200)
    assert me.slug == "tandem" and me.id == w.app.id
    insts = ok(checker, app_gh.rest.apps.list_installations(), 200)
    assert [i.id for i in insts] == [w.inst.id]
    assert ok(checker, app_gh.rest.apps.get_installation(w.inst.id), 200).account.login == ORG
    assert ok(checker, app_gh.rest.apps.get_repo_installation(ORG, R), 200).id == w.inst.id
    tok = ok(checker, app_gh.rest.apps.create_installation_access_token(w.inst.id, data={"repositories": [R]}), 201)
    assert tok.token.startswith("ghs_") and len(tok.token) == 40 and tok.repository_selection == "selected"
    assert ok(checker, gh.rest.rate_limit.get(), 200).resources.core.limit == 5000
    repos = ok(checker, gh.rest.apps.list_repos_accessible_to_installation(), 200)
    assert [r.full_name for r in repos.repositories] == [f"{ORG}/{R}"]

    # --- people
    assert ok(checker, gh.rest.users.get_by_username("octocat"), 200).login == "octocat"
    ok(checker, gh.rest.orgs.check_membership_for_user(ORG, "octocat"), 204)
    with pytest.raises(RequestFailed) as info:
        gh.rest.orgs.check_membership_for_user(ORG, "nobody")
    assert info.value.response.status_code == 404
    m = ok(checker, gh.rest.teams.get_membership_for_user_in_org(ORG, "raters", "octocat"), 200)
    assert (m.state, m.role) == ("active", "member")
    with pytest.raises(RequestFailed):
        gh.rest.teams.get_membership_for_user_in_org(ORG, "raters", "hubot")

    # --- repository
    repo = ok(checker, gh.rest.repos.get(ORG, R), 200)
    assert repo.clone_url == w.repo.clone_url and repo.default_branch == "main"
    assert ok(checker, gh.rest.repos.update(ORG, R, data={"description": "ML"}), 200).description == "ML"
    perm = ok(checker, gh.rest.repos.get_collaborator_permission_level(ORG, R, "octocat"), 200)
    assert perm.permission == "read"

    # --- git database
    main = ok(checker, gh.rest.git.get_ref(ORG, R, "heads/main"), 200).object_.sha
    assert main == w.repo.git.ref_sha("refs/heads/main")
    assert [r.ref for r in ok(checker, gh.rest.git.list_matching_refs(ORG, R, "heads/"), 200)] == ["refs/heads/main"]
    commit = ok(checker, gh.rest.git.get_commit(ORG, R, main), 200)
    tree = ok(checker, gh.rest.git.get_tree(ORG, R, commit.tree.sha, recursive="1"), 200)
    assert {e.path for e in tree.tree} == {"README.md", "src", "src/app.py"}
    blob = ok(checker, gh.rest.git.create_blob(ORG, R, data={"content": "new\n", "encoding": "utf-8"}), 201)
    new_tree = ok(
        checker,
        gh.rest.git.create_tree(
            ORG,
            R,
            data={
                "base_tree": commit.tree.sha,
                "tree": [
                    {"path": "docs/new.md", "mode": "100644", "type": "blob", "sha": blob.sha},
                    {
                        "path": "src/app.py",
                        "mode": "100644",
                        "type": "blob",
                        "content": "import os\n\n\ndef main():\n    return dict(os.environ)\n",
                    },
                ],
            },
        ),
        201,
    )
    new_commit = ok(
        checker,
        gh.rest.git.create_commit(ORG, R, data={"message": "Add docs", "tree": new_tree.sha, "parents": [main]}),
        201,
    )
    assert new_commit.author.name == "tandem[bot]"
    ref = ok(checker, gh.rest.git.create_ref(ORG, R, data={"ref": "refs/heads/arm-a", "sha": new_commit.sha}), 201)
    assert ref.object_.sha == new_commit.sha
    ok(checker, gh.rest.git.create_ref(ORG, R, data={"ref": "refs/heads/tmp", "sha": main}), 201)
    ok(checker, gh.rest.git.update_ref(ORG, R, "heads/tmp", data={"sha": new_commit.sha}), 200)
    ok(checker, gh.rest.git.delete_ref(ORG, R, "heads/tmp"), 204)

    # --- contents
    f = ok(checker, gh.rest.repos.get_content(ORG, R, "src/app.py", ref="arm-a"), 200)
    assert base64.b64decode(f.content) == b"import os\n\n\ndef main():\n    return dict(os.environ)\n"
    listing = ok(checker, gh.rest.repos.get_content(ORG, R, "src"), 200)
    assert [e.name for e in listing] == ["app.py"]
    put = ok(
        checker,
        gh.rest.repos.create_or_update_file_contents(
            ORG,
            R,
            "notes/a.md",
            data={"message": "Add notes", "content": base64.b64encode(b"a\n").decode(), "branch": "arm-a"},
        ),
        201,
    )
    put2 = ok(
        checker,
        gh.rest.repos.create_or_update_file_contents(
            ORG,
            R,
            "notes/a.md",
            data={
                "message": "Edit notes",
                "content": base64.b64encode(b"b\n").decode(),
                "branch": "arm-a",
                "sha": put.content.sha,
            },
        ),
        200,
    )
    ok(
        checker,
        gh.rest.repos.delete_file(
            ORG, R, "notes/a.md", data={"message": "Remove notes", "sha": put2.content.sha, "branch": "arm-a"}
        ),
        200,
    )

    # --- pull requests
    pr = ok(
        checker,
        gh.rest.pulls.create(
            ORG, R, data={"title": "Arm A", "head": "arm-a", "base": "main", "body": "Candidate A", "draft": True}
        ),
        201,
    )
    n = pr.number
    assert pr.draft and pr.head.sha == w.repo.git.ref_sha("refs/heads/arm-a") and pr.merged is False
    assert pr.changed_files == 2 and pr.commits == 4
    assert ok(checker, gh.rest.pulls.get(ORG, R, n), 200).html_url == f"{emu.url}/{ORG}/{R}/pull/{n}"
    assert [p.number for p in ok(checker, gh.rest.pulls.list(ORG, R, head=f"{ORG}:arm-a"), 200)] == [n]
    assert ok(checker, gh.rest.pulls.list(ORG, R, state="closed"), 200) == []
    files = ok(checker, gh.rest.pulls.list_files(ORG, R, n), 200)
    assert {f.filename: f.status for f in files} == {"docs/new.md": "added", "src/app.py": "modified"}
    assert ok(checker, gh.rest.pulls.update(ORG, R, n, data={"title": "Arm A (v2)"}), 200).title == "Arm A (v2)"
    rr = ok(checker, gh.rest.pulls.request_reviewers(ORG, R, n, data={"reviewers": ["octocat"]}), 201)
    assert [u.login for u in rr.requested_reviewers] == ["octocat"]
    assert [u.login for u in ok(checker, gh.rest.pulls.list_requested_reviewers(ORG, R, n), 200).users] == ["octocat"]
    with pytest.raises(RequestFailed) as info:
        gh.rest.pulls.request_reviewers(ORG, R, n, data={"reviewers": ["no-such-user"]})
    assert info.value.response.status_code == 422
    ok(checker, gh.rest.pulls.remove_requested_reviewers(ORG, R, n, data={"reviewers": ["octocat"]}), 200)

    # --- issues view of the PR, labels
    issue = ok(checker, gh.rest.issues.get(ORG, R, n), 200)
    assert issue.pull_request is not None
    ok(checker, gh.rest.issues.update(ORG, R, n, data={"body": "Candidate A, edited"}), 200)
    ok(checker, gh.rest.issues.create_label(ORG, R, data={"name": "tandem:pair", "color": "5319e7"}), 201)
    assert ok(checker, gh.rest.issues.get_label(ORG, R, "tandem:pair"), 200).color == "5319e7"
    ok(checker, gh.rest.issues.update_label(ORG, R, "tandem:pair", data={"description": "A pair"}), 200)
    assert [lb.name for lb in ok(checker, gh.rest.issues.list_labels_for_repo(ORG, R), 200)] == ["tandem:pair"]
    labels = ok(checker, gh.rest.issues.add_labels(ORG, R, n, data={"labels": ["tandem:pair", "needs-rating"]}), 200)
    assert [lb.name for lb in labels] == ["tandem:pair", "needs-rating"]  # unknown label created
    ok(checker, gh.rest.issues.set_labels(ORG, R, n, data={"labels": ["tandem:pair", "rated"]}), 200)
    assert [lb.name for lb in ok(checker, gh.rest.issues.list_labels_on_issue(ORG, R, n), 200)] == [
        "tandem:pair",
        "rated",
    ]
    assert [lb.name for lb in ok(checker, gh.rest.issues.remove_label(ORG, R, n, "rated"), 200)] == ["tandem:pair"]
    ok(checker, gh.rest.issues.remove_all_labels(ORG, R, n), 204)
    ok(checker, gh.rest.issues.delete_label(ORG, R, "rated"), 204)

    # --- issue comments and reactions
    c = ok(checker, gh.rest.issues.create_comment(ORG, R, n, data={"body": "Which is better?"}), 201)
    assert c.user.login == "tandem[bot]" and c.user.type == "Bot" and c.performed_via_github_app.slug == "tandem"
    human = emu.as_user("octocat").comment(f"{ORG}/{R}", n, "/prefer A\nbecause it is shorter")
    comments = ok(checker, gh.rest.issues.list_comments(ORG, R, n), 200)
    assert [x.id for x in comments] == [c.id, human.id]
    assert ok(checker, gh.rest.issues.get_comment(ORG, R, human.id), 200).body.startswith("/prefer A")
    ok(checker, gh.rest.issues.update_comment(ORG, R, c.id, data={"body": "Which one is better?"}), 200)
    ok(checker, gh.rest.reactions.create_for_issue_comment(ORG, R, human.id, data={"content": "eyes"}), 201)
    ok(checker, gh.rest.reactions.create_for_issue_comment(ORG, R, human.id, data={"content": "eyes"}), 200)
    assert [r.content for r in ok(checker, gh.rest.reactions.list_for_issue_comment(ORG, R, human.id), 200)] == ["eyes"]
    ok(checker, gh.rest.issues.delete_comment(ORG, R, c.id), 204)

    # --- reviews and review comments
    emu.as_user("octocat").submit_review(f"{ORG}/{R}", n, body="/prefer B", event="COMMENT")
    rc_user = emu.as_user("octocat").review_comment(f"{ORG}/{R}", n, path="src/app.py", line=5, body="this leaks")
    rv = ok(checker, gh.rest.pulls.create_review(ORG, R, n, data={"body": "Thanks!", "event": "COMMENT"}), 200)
    assert rv.state == "COMMENTED"
    pending = ok(checker, gh.rest.pulls.create_review(ORG, R, n, data={"body": "draft"}), 200)
    assert pending.state == "PENDING"
    ok(checker, gh.rest.pulls.update_review(ORG, R, n, pending.id, data={"body": "draft 2"}), 200)
    assert ok(checker, gh.rest.pulls.get_review(ORG, R, n, pending.id), 200).body == "draft 2"
    ok(checker, gh.rest.pulls.delete_pending_review(ORG, R, n, pending.id), 200)
    assert {r.state for r in ok(checker, gh.rest.pulls.list_reviews(ORG, R, n), 200)} == {"COMMENTED"}
    rc = ok(
        checker,
        gh.rest.pulls.create_review_comment(
            ORG, R, n, data={"body": "nit", "commit_id": pr.head.sha, "path": "src/app.py", "line": 5, "side": "RIGHT"}
        ),
        201,
    )
    assert rc.diff_hunk.startswith("@@") and rc.line == 5
    assert {x.id for x in ok(checker, gh.rest.pulls.list_review_comments(ORG, R, n), 200)} == {rc.id, rc_user.id}
    ok(checker, gh.rest.pulls.get_review_comment(ORG, R, rc.id), 200)
    ok(checker, gh.rest.pulls.update_review_comment(ORG, R, rc.id, data={"body": "nit: naming"}), 200)
    ok(checker, gh.rest.pulls.delete_review_comment(ORG, R, rc.id), 204)

    # --- check runs
    run = ok(
        checker,
        gh.rest.checks.create(ORG, R, data={"name": "tandem", "head_sha": pr.head.sha, "status": "in_progress"}),
        201,
    )
    assert run.pull_requests[0].number == n
    ok(checker, gh.rest.checks.get(ORG, R, run.id), 200)
    done = ok(
        checker,
        gh.rest.checks.update(
            ORG, R, run.id, data={"conclusion": "success", "output": {"title": "Rated", "summary": "1 judgment"}}
        ),
        200,
    )
    assert done.status == "completed" and done.completed_at is not None
    assert ok(checker, gh.rest.checks.list_for_ref(ORG, R, "arm-a"), 200).total_count == 1

    # --- close, forks
    closed = ok(checker, gh.rest.pulls.update(ORG, R, n, data={"state": "closed"}), 200)
    assert closed.state == "closed" and closed.merged is False
    emu.create_org("upstream")
    emu.create_repository("upstream", "mlflow", files={"README.md": "upstream\n"})
    fork = ok(
        checker,
        gh.rest.repos.create_fork(
            "upstream", "mlflow", data={"organization": ORG, "name": "mlflow-upstream", "default_branch_only": True}
        ),
        202,
    )
    assert fork.fork and fork.parent.full_name == "upstream/mlflow"
    assert git("--git-dir", str(emu.repo(f"{ORG}/mlflow-upstream").git_dir), "log", "--format=%s") == "Initial commit"
    assert [f.full_name for f in ok(checker, gh.rest.repos.list_forks("upstream", "mlflow"), 200)] == [
        f"{ORG}/mlflow-upstream"
    ]

    # --- webhook deliveries (JWT)
    assert emu.drain(10)
    deliveries = ok(checker, app_gh.rest.apps.list_webhook_deliveries(per_page=2), 200)
    assert len(deliveries) == 2 and deliveries[0].id > deliveries[1].id
    link = app_gh.rest.apps.list_webhook_deliveries(per_page=2).raw_response.headers["link"]
    assert 'rel="next"' in link and "cursor=v1_" in link
    resp = app_gh.rest.apps.get_webhook_delivery(deliveries[0].id)
    one = ok(checker, resp, 200)
    assert resp.raw_response.json()["request"]["headers"]["X-GitHub-Delivery"] == one.guid
    ok(checker, app_gh.rest.apps.redeliver_webhook_delivery(deliveries[0].id), 202)
    assert emu.drain(10)
    again = emu.deliveries[-1]
    assert again.redelivery and again.guid == one.guid and again.id != one.id

    # --- installations: suspend, delete
    ok(checker, app_gh.rest.apps.suspend_installation(w.inst.id), 204)
    ok(checker, app_gh.rest.apps.unsuspend_installation(w.inst.id), 204)
    ok(checker, app_gh.rest.apps.delete_installation(w.inst.id), 202)  # 2026-03-10: 202 (2022-11-28: 204)

    # --- manifest conversion (no auth)
    code = emu.manifest_code(
        {
            "name": "Tandem Staging",
            "url": "https://example.com",
            "hook_attributes": {"url": hooks.url},
            "default_events": ["pull_request"],
            "default_permissions": {"pull_requests": "write"},
        }
    )
    anon = GitHub(base_url=emu.url, http_cache=False, auto_retry=False)
    conv = ok(checker, anon.rest.apps.create_from_manifest(code), 201)
    assert conv.slug == "tandem-staging" and conv.pem.startswith("-----BEGIN RSA PRIVATE KEY-----")

    # Every webhook the tour caused is valid for its schema and githubkit's models.
    assert emu.drain(10)
    assert len(hooks.received) == len(emu.deliveries) > 20
    for hook in hooks.received:
        checker.check_webhook(hook.event, hook.body)

    # Every operation the emulator implements was called above.
    called = {r.operation_id for r in emu.requests}
    assert set(HANDLERS) - called == set()

    # The same reads under API version 2022-11-28 match that version's description.
    replay_gets_as_2022(w, checker)
    w.stop()


def replay_gets_as_2022(w: World, checker: SchemaChecker) -> None:
    token, app_jwt = w.token_for_replay(), w.jwt()
    with httpx.Client(base_url=w.emu.url) as client:
        seen = set()
        for r in w.emu.requests:
            if r.method != "GET" or r.status != 200 or (r.path, str(r.query)) in seen:
                continue
            seen.add((r.path, str(r.query)))
            auth = f"Bearer {app_jwt}" if r.token_kind == "jwt" else f"token {token}"
            resp = client.get(
                r.path,
                params=r.query,
                headers={
                    "Authorization": auth,
                    "X-GitHub-Api-Version": "2022-11-28",
                    "Accept": "application/vnd.github+json",
                },
            )
            if resp.status_code == 200:  # some objects were deleted since
                checker.check(resp)


def _token_for_replay(self: World) -> str:
    """A token on a new installation (the tour deleted the first one)."""
    inst = self.emu.install_app("evals-org", repositories="all", app=self.app)
    r = httpx.post(
        f"{self.emu.url}/app/installations/{inst.id}/access_tokens", headers={"Authorization": f"Bearer {self.jwt()}"}
    )
    return r.json()["token"]


World.token_for_replay = _token_for_replay


# ============================================================================ git


def test_push_through_clone_url_is_visible_through_the_api(world, tmp_path, checker, hooks):
    emu, gh = world.emu, world.gh
    emu.set_webhook(hooks.url)
    work = tmp_path / "work"
    git("clone", "--quiet", "--filter=blob:none", world.repo.clone_url, str(work))
    git("checkout", "-q", "-b", "arm-b", cwd=work)
    (work / "src" / "app.py").write_text("import os\n\n\ndef main():\n    return {}\n")
    git("commit", "-q", "-am", "Arm B", cwd=work)
    git("push", "-q", "origin", "arm-b", cwd=work)
    pushed = git("rev-parse", "HEAD", cwd=work)
    ref = ok(checker, gh.rest.git.get_ref("evals-org", "mlflow", "heads/arm-b"), 200)
    assert ref.object_.sha == pushed
    pr = ok(
        checker,
        gh.rest.pulls.create(
            "evals-org", "mlflow", data={"title": "Arm B", "head": "arm-b", "base": "main", "draft": True}
        ),
        201,
    )
    assert (pr.head.sha, pr.commits, pr.additions, pr.deletions) == (pushed, 1, 1, 1)

    # A second push to the PR's head: head sha read from git, "synchronize" sent.
    (work / "README.md").write_text("hello\n")
    git("commit", "-q", "-am", "Docs", cwd=work)
    git("push", "-q", "origin", "arm-b", cwd=work, env={"GITHUB_EMULATOR_PUSHER": "octocat"})
    second = git("rev-parse", "HEAD", cwd=work)
    assert ok(checker, gh.rest.pulls.get("evals-org", "mlflow", pr.number), 200).head.sha == second
    assert emu.drain(10)
    sync = [h for h in hooks.received if h.json.get("action") == "synchronize"]
    assert len(sync) == 1
    body = checker.check_webhook("pull_request", sync[0].body)
    assert (body["before"], body["after"], body["sender"]["login"]) == (pushed, second, "octocat")
    assert body["pull_request"]["head"]["sha"] == second
    # GitHub keeps refs/pull/N/head in the base repository.
    assert world.repo.git.ref_sha(f"refs/pull/{pr.number}/head") == second


def test_commit_made_through_rest_is_visible_to_git(world, tmp_path, checker):
    gh = world.gh
    main = gh.rest.git.get_ref("evals-org", "mlflow", "heads/main").parsed_data.object_.sha
    base_tree = gh.rest.git.get_commit("evals-org", "mlflow", main).parsed_data.tree.sha
    blob = gh.rest.git.create_blob(
        "evals-org", "mlflow", data={"content": base64.b64encode(b"\x00binary\xff").decode(), "encoding": "base64"}
    ).parsed_data
    tree = gh.rest.git.create_tree(
        "evals-org",
        "mlflow",
        data={
            "base_tree": base_tree,
            "tree": [
                {"path": "data/blob.bin", "mode": "100644", "type": "blob", "sha": blob.sha},
                {"path": "README.md", "mode": "100644", "type": "blob", "sha": None},
            ],
        },
    ).parsed_data
    commit = ok(
        checker,
        gh.rest.git.create_commit(
            "evals-org",
            "mlflow",
            data={
                "message": "Binary data\n\nBody.",
                "tree": tree.sha,
                "parents": [main],
                "author": {"name": "Ada", "email": "ada@example.com", "date": "2026-01-02T03:04:05Z"},
            },
        ),
        201,
    )
    assert commit.author.date.isoformat().startswith("2026-01-02T03:04:05")
    gh.rest.git.update_ref("evals-org", "mlflow", "heads/main", data={"sha": commit.sha})
    with pytest.raises(RequestFailed) as info:  # not a fast-forward
        gh.rest.git.update_ref("evals-org", "mlflow", "heads/main", data={"sha": main})
    assert info.value.response.status_code == 422
    work = tmp_path / "clone"
    git("clone", "--quiet", "--filter=blob:none", world.repo.clone_url, str(work))
    assert git("log", "-1", "--format=%H %an %s", cwd=work) == f"{commit.sha} Ada Binary data"
    assert (work / "data" / "blob.bin").read_bytes() == b"\x00binary\xff"
    assert not (work / "README.md").exists()
    # contents API and git agree on the blob sha
    f = gh.rest.repos.get_content("evals-org", "mlflow", "data/blob.bin").parsed_data
    assert f.sha == git("rev-parse", "HEAD:data/blob.bin", cwd=work)


def git_as(token: str) -> dict[str, str]:
    """git's environment for a request carrying token as GitHub takes it (Basic, x-access-token)."""
    credentials = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {credentials}",
    }


def test_git_over_http_at_the_web_address_with_an_installation_token(world, tmp_path, checker):
    """As on github.com: {url}/{owner}/{repo}.git, partial clones, and a push the API then shows,
    made by the app's bot; none of it is a REST request."""
    emu, gh = world.emu, world.gh
    url, token = f"{emu.url}/evals-org/mlflow.git", world.token()
    emu.reset_requests()
    work = tmp_path / "work"
    git("clone", "--quiet", "--filter=blob:none", url, str(work), env=git_as(token))
    git("checkout", "-q", "-b", "arm-a", cwd=work)
    (work / "src" / "app.py").write_text("def main():\n    return {}\n")
    git("commit", "-q", "-am", "Arm A", cwd=work)
    git("push", "-q", "origin", "arm-a", cwd=work, env=git_as(token))
    assert emu.requests == []
    ref = ok(checker, gh.rest.git.get_ref("evals-org", "mlflow", "heads/arm-a"), 200)
    assert ref.object_.sha == git("rev-parse", "HEAD", cwd=work)


def test_git_over_http_refuses_as_github_does(world):
    emu = world.emu
    emu.create_repository("evals-org", "private", files={"x.txt": "x\n"}, private=True)
    full = world.token()
    read_only = httpx.post(
        f"{emu.url}/app/installations/{world.inst.id}/access_tokens",
        headers={"Authorization": f"Bearer {world.jwt()}"},
        json={"permissions": {"contents": "read"}},
    ).json()["token"]

    def status(repo: str, service: str = "git-upload-pack", token: str | None = None) -> int:
        auth = {"Authorization": "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()}
        url = f"{emu.url}/evals-org/{repo}.git/info/refs?service={service}"
        return httpx.get(url, headers=auth if token else {}).status_code

    assert status("mlflow") == 200  # a public repository, to anyone
    assert status("mlflow", token=full) == 200
    assert status("mlflow", token="ghs_not-a-token") == 401
    assert status("private") == 401  # asks who is asking
    assert status("private", token=full) == 404  # not the installation's: not found
    assert status("mlflow", "git-receive-pack") == 401
    assert status("mlflow", "git-receive-pack", token=full) == 200
    assert status("mlflow", "git-receive-pack", token=read_only) == 403
    assert status("other", "git-receive-pack", token=full) == 403  # public, but not the installation's
    assert status("missing", token=full) == 404


# ============================================================================ webhooks


def _example_keys(event: str, action: str) -> set[str]:
    """Top-level keys of GitHub's real example, preferring one sent to an app
    in an organization (with ``installation`` and ``organization``)."""
    best = None
    for path in sorted((FIXTURES / event).glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("action") != action:
            continue
        score = ("installation" in data) + ("organization" in data)
        if best is None or score > best[0]:
            best = (score, set(data))
    assert best is not None, f"no example for {event}.{action}"
    return best[1]


def test_webhooks_are_signed_complete_and_shaped_like_githubs(world, checker, hooks):
    emu, gh = world.emu, world.gh
    emu.set_webhook(hooks.url)
    emu.commit_files("evals-org/mlflow", {"src/app.py": "print('a')\n"}, branch="arm-a", author="hubot")
    pr = gh.rest.pulls.create("evals-org", "mlflow", data={"title": "A", "head": "arm-a", "base": "main"}).parsed_data
    gh.rest.issues.add_labels("evals-org", "mlflow", pr.number, data={"labels": ["tandem"]})
    bot = gh.rest.issues.create_comment("evals-org", "mlflow", pr.number, data={"body": "Rate me"}).parsed_data
    user = emu.as_user("octocat")
    c = user.comment("evals-org/mlflow", pr.number, "/prefer A\nbecause ...")
    user.edit_comment("evals-org/mlflow", c.id, "/prefer B")
    user.delete_comment("evals-org/mlflow", c.id)
    user.submit_review("evals-org/mlflow", pr.number, body="/prefer B", event="APPROVE")
    rc = user.review_comment("evals-org/mlflow", pr.number, path="src/app.py", line=1, body="this leaks")
    user.edit_review_comment("evals-org/mlflow", rc.id, "this leaks memory")
    user.delete_review_comment("evals-org/mlflow", rc.id)
    gh.rest.pulls.update("evals-org", "mlflow", pr.number, data={"state": "closed"})
    emu.create_repository("evals-org", "third", files={"a": "b"})
    emu.add_installation_repositories(world.inst.id, ["third"])
    assert emu.drain(10)

    got = hooks.events()
    assert got == [
        ("pull_request", "opened"),
        ("pull_request", "labeled"),
        ("issue_comment", "created"),
        ("issue_comment", "created"),
        ("issue_comment", "edited"),
        ("issue_comment", "deleted"),
        ("pull_request_review", "submitted"),
        ("pull_request_review_comment", "created"),
        ("pull_request_review", "submitted"),
        ("pull_request_review_comment", "edited"),
        ("pull_request_review_comment", "deleted"),
        ("pull_request", "closed"),
        ("installation_repositories", "added"),
    ]
    guids = set()
    for hook, delivery in zip(
        hooks.received, emu.deliveries[1:], strict=False
    ):  # [0]: installation created, no URL yet
        h = hook.headers
        assert h["content-type"] == "application/json"
        assert h["user-agent"].startswith("GitHub-Hookshot/")
        assert h["x-github-hook-installation-target-type"] == "integration"
        assert h["x-github-hook-installation-target-id"] == str(world.app.id)
        assert h["x-github-hook-id"] == str(world.app.hook_id)
        assert h["x-github-delivery"] == delivery.guid and delivery.status_code == 202
        guids.add(h["x-github-delivery"])
        expected = "sha256=" + hmac.new(b"s3cret", hook.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(h["x-hub-signature-256"], expected)
        assert h["x-hub-signature"] == "sha1=" + hmac.new(b"s3cret", hook.body, hashlib.sha1).hexdigest()
        payload = checker.check_webhook(hook.event, hook.body)
        # Deliveries to an app always carry ``installation`` and, for a repository
        # in an organization, ``organization``; some examples were captured
        # elsewhere and lack them.
        context = {"installation", "organization"}
        assert set(payload) - context == _example_keys(hook.event, payload["action"]) - context, hook.event
        assert "installation" in payload and ("organization" in payload or hook.event.startswith("installation"))
        if hook.event != "installation_repositories":
            assert payload["installation"] == {"id": world.inst.id, "node_id": world.inst.node_id}
    assert len(guids) == len(hooks.received)

    first_comment = hooks.received[2].json
    assert first_comment["sender"] == {**first_comment["sender"], "login": "tandem[bot]", "type": "Bot"}
    assert first_comment["comment"]["id"] == bot.id
    assert first_comment["comment"]["performed_via_github_app"]["id"] == world.app.id
    assert hooks.received[3].json["sender"]["login"] == "octocat"
    assert hooks.received[4].json["changes"] == {"body": {"from": "/prefer A\nbecause ..."}}
    assert hooks.received[1].json["label"]["name"] == "tandem"


def test_fixture_payloads_can_be_delivered_and_redelivered(world, hooks, checker):
    emu = world.emu
    emu.set_webhook(hooks.url)
    raw = (FIXTURES / "issue_comment" / "created.with-installation.payload.json").read_bytes()
    d = emu.deliver("issue_comment", json.loads(raw), delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert emu.drain(5)
    assert hooks.received[0].headers["x-github-delivery"] == d.guid == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert json.loads(hooks.received[0].body) == json.loads(raw)
    r = world.app_gh.rest.apps.redeliver_webhook_delivery(d.id)
    assert r.status_code == 202
    assert emu.drain(5)
    assert hooks.received[1].body == hooks.received[0].body
    assert hooks.received[1].headers["x-github-delivery"] == d.guid
    assert emu.deliveries[-1].redelivery and emu.deliveries[-1].id != d.id


def test_failed_deliveries_are_recorded_not_retried(tmp_path):
    with WebhookReceiver(status=500) as bad:
        w = World(tmp_path, webhook_url=bad.url)
        w.emu.as_user("octocat").comment("evals-org/mlflow", 1, "x") if w.repo.issues else None
        w.emu.commit_files("evals-org/mlflow", {"a": "b"}, branch="x")
        w.gh.rest.pulls.create("evals-org", "mlflow", data={"title": "X", "head": "x", "base": "main"})
        assert w.emu.drain(5)
        assert len(bad.received) == 2  # installation created + pull_request opened; no retry
        failed = w.emu.deliveries[-1]
        assert (failed.status_code, failed.status, failed.ok) == (500, "Invalid HTTP Response: 500", False)
        items = w.app_gh.rest.apps.list_webhook_deliveries(status="failure").parsed_data
        assert [i.id for i in items] == [d.id for d in reversed(w.emu.deliveries)]
        w.emu.set_webhook("http://127.0.0.1:9/nothing-listens-here")
        w.gh.rest.issues.create_comment("evals-org", "mlflow", 1, data={"body": "x"})
        assert w.emu.drain(10)
        assert w.emu.deliveries[-1].status_code == 0 and not w.emu.deliveries[-1].ok
        w.stop()


# ============================================================================ faults, auth


def test_fault_modes(world):
    emu, url = world.emu, world.emu.url
    token = world.token()
    headers = {"Authorization": f"token {token}", "Accept": "application/vnd.github+json"}
    path = "/repos/evals-org/mlflow"
    with httpx.Client(base_url=url, headers=headers) as client:
        emu.faults.fail(status=502, times=2, path_contains="/repos/")
        assert [client.get(path).status_code for _ in range(3)] == [502, 502, 200]
        r = None
        emu.faults.fail(status=503, times=1, method="POST")
        assert client.get(path).status_code == 200  # only POSTs match
        r = client.post(f"{path}/issues/1/comments", json={"body": "x"})
        assert r.status_code == 503 and r.json()["status"] == "503" and "message" in r.json()

        emu.faults.secondary_rate_limit(times=1, retry_after=3)
        r = client.get(path)
        assert r.status_code == 403 and r.headers["retry-after"] == "3"
        assert r.json()["message"].startswith("You have exceeded a secondary rate limit")

        emu.faults.too_many_requests(times=1, retry_after=2)
        r = client.get(path)
        assert r.status_code == 429 and r.headers["retry-after"] == "2"

        emu.faults.primary_rate_limit(times=1, reset_in=30)
        r = client.get(path)
        assert r.status_code == 403 and r.headers["x-ratelimit-remaining"] == "0"
        assert int(r.headers["x-ratelimit-reset"]) >= time.time() + 25
        assert r.json()["message"].startswith("API rate limit exceeded")
        assert client.get(path).status_code == 200 and int(client.get(path).headers["x-ratelimit-remaining"]) > 0

        emu.faults.latency(0.3)
        start = time.monotonic()
        assert client.get(path).status_code == 200
        assert time.monotonic() - start >= 0.3
        emu.faults.clear()  # and nothing is injected any more
        assert (emu.faults.delay, emu.faults.pending) == (0.0, 0)
        assert client.get(path).status_code == 200
    # No fault changed anything: the POST that failed created no comment.
    assert not emu.core.state.issue_comments

    # githubkit sees GitHub's exceptions.
    gh = world.gh
    gh.rest.repos.get("evals-org", "mlflow")  # (fetches the token first)
    emu.faults.secondary_rate_limit(times=1)
    with pytest.raises(SecondaryRateLimitExceeded):
        gh.rest.repos.get("evals-org", "mlflow")
    emu.faults.primary_rate_limit(times=1)
    with pytest.raises(PrimaryRateLimitExceeded):
        gh.rest.repos.get("evals-org", "mlflow")
    emu.faults.fail(status=500, times=1)
    with pytest.raises(RequestFailed) as info:
        gh.rest.repos.get("evals-org", "mlflow")
    assert info.value.response.status_code == 500
    recorded = [r.status for r in emu.requests if r.path == path]
    assert 502 in recorded and 429 in recorded and 403 in recorded


def test_secondary_limits_are_enforced_per_caller_like_githubs(world):
    """Writes over the minute's or the hour's count, or points over the minute's, are refused
    with retry-after until the window has room; refused requests do not count; reads go on."""
    emu, path = world.emu, "/repos/evals-org/mlflow"
    emu.secondary_limits = SecondaryLimits(
        writes_per_minute=3, writes_per_hour=4, points_per_minute=100, minute=30.0, hour=100.0
    )
    headers = {"Authorization": f"token {world.token()}", "Accept": "application/vnd.github+json"}
    with httpx.Client(base_url=emu.url, headers=headers) as client:

        def write(n):
            return client.post(f"{path}/labels", json={"name": f"l{n}", "color": "ededed"})

        assert [write(n).status_code for n in range(4)] == [201, 201, 201, 403]
        refused = write(9)
        assert refused.json()["message"].startswith("You have exceeded a secondary rate limit")
        assert 28 <= int(refused.headers["retry-after"]) <= 30
        assert client.get(path).status_code == 200
        emu.secondary_limits = SecondaryLimits(writes_per_minute=3, writes_per_hour=3, minute=0.2, hour=30.0)
        assert [write(n).status_code for n in range(3, 7)] == [201, 201, 201, 403]
        assert 29 <= int(write(9).headers["retry-after"]) <= 30  # the hour's count
        emu.secondary_limits = SecondaryLimits(points_per_minute=12, minute=30.0)
        assert [write(7).status_code, client.get(path).status_code, write(8).status_code] == [201, 200, 201]
        assert [client.get(path).status_code for _ in range(2)] == [200, 403]  # 5 + 1 + 5 + 1 + 1 points > 12
        assert client.get("/rate_limit").status_code == 200  # free of every limit
        emu.secondary_limits = None
        assert write(10).status_code == 201

        # A slow request reaches GitHub later than it was sent.
        emu.faults.slow_requests(0.3, method="GET")
        start = time.monotonic()
        assert client.get(path).status_code == 200 and time.monotonic() - start >= 0.3
        assert emu.requests[-1].at >= emu.requests[-2].at + 0.3


def test_revoked_tokens_get_401_and_refresh_works(world):
    gh = world.gh
    assert gh.rest.repos.get("evals-org", "mlflow").status_code == 200
    assert world.emu.revoke_installation_tokens() == 1
    with pytest.raises(RequestFailed) as info:
        gh.rest.repos.get("evals-org", "mlflow")  # githubkit still holds the cached token
    assert info.value.response.status_code == 401
    assert info.value.response.json()["message"] == "Bad credentials"
    # githubkit caches installation tokens process-wide (DEFAULT_CACHE_STRATEGY);
    # a client with its own cache fetches a new token.
    fresh = GitHub(
        AppInstallationAuthStrategy(world.app.id, world.app.private_key_pem, world.inst.id),
        base_url=world.emu.url,
        http_cache=False,
        auto_retry=False,
        cache_strategy=MemCacheStrategy(),
    )
    assert fresh.rest.repos.get("evals-org", "mlflow").status_code == 200
    kinds = [(r.token_kind, r.status) for r in world.emu.requests]
    assert ("installation", 401) in kinds and ("jwt", 201) in kinds


def test_jwt_checks(world):
    url = f"{world.emu.url}/app"
    now = int(time.time())

    def status(token: str) -> tuple[int, str]:
        r = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        return r.status_code, r.json().get("message", "")

    assert status(world.jwt())[0] == 200
    assert status(world.jwt(iss=world.app.id))[0] == 200  # integer iss
    assert status(world.jwt(iss=world.app.client_id))[0] == 200  # client id
    code, message = status(world.jwt(iat=now - 700, exp=now - 10))
    assert code == 401 and "'Expiration time' claim ('exp') must be" in message
    code, message = status(world.jwt(iat=now - 10, exp=now + 700))
    assert code == 401 and message == "'Expiration time' claim ('exp') is too far in the future"
    code, message = status(world.jwt(iat=now + 120, exp=now + 300))
    assert code == 401 and "'Issued at' claim ('iat')" in message
    from tandem.sandbox.github.auth import generate_private_key

    other_pem, _ = generate_private_key()
    forged = jwt.encode({"iat": now - 60, "exp": now + 500, "iss": str(world.app.id)}, other_pem, algorithm="RS256")
    assert status(forged) == (401, "A JSON web token could not be decoded")
    assert status("not.a.jwt")[0] == 401
    # an installation token is not accepted where a JWT is required, and vice versa
    r = httpx.get(url, headers={"Authorization": f"token {world.token()}"})
    assert r.status_code == 401
    r = httpx.get(f"{world.emu.url}/repos/evals-org/mlflow", headers={"Authorization": f"Bearer {world.jwt()}"})
    assert r.status_code == 403


def test_access_rules_permissions_and_validation(world):
    emu, gh = world.emu, world.gh
    # a repository the installation does not cover: private -> 404, public -> readable, not writable
    emu.create_repository("evals-org", "secret", files={"a": "b"}, private=True)
    with pytest.raises(RequestFailed) as info:
        gh.rest.repos.get("evals-org", "secret")
    assert info.value.response.status_code == 404
    assert gh.rest.repos.get("evals-org", "other").status_code == 200
    with pytest.raises(RequestFailed) as info:
        gh.rest.issues.create_label("evals-org", "other", data={"name": "x"})
    assert info.value.response.status_code == 403
    # anonymous: public reads only
    assert httpx.get(f"{emu.url}/repos/evals-org/mlflow").status_code == 200
    assert httpx.get(f"{emu.url}/repos/evals-org/secret").status_code == 404
    # an app without a permission gets 403 and the header naming what is needed
    app2 = emu.register_app(slug="reader", name="Reader", permissions={"contents": "read"})
    inst2 = emu.install_app("evals-org", repositories="all", app=app2)
    reader = world.client(AppInstallationAuthStrategy(app2.id, app2.private_key_pem, inst2.id))
    with pytest.raises(RequestFailed) as info:
        reader.rest.pulls.list("evals-org", "mlflow")
    assert info.value.response.status_code == 403
    assert info.value.response.headers["x-accepted-github-permissions"] == "pull_requests=read"
    # request bodies are validated like GitHub does
    r = httpx.post(
        f"{emu.url}/repos/evals-org/mlflow/pulls",
        json={"title": 5, "head": "x", "base": "main"},
        headers={"Authorization": f"token {world.token()}"},
    )
    assert r.status_code == 422 and r.json()["message"].startswith("Invalid request.")
    with pytest.raises(RequestFailed) as info:
        gh.rest.pulls.create("evals-org", "mlflow", data={"title": "T", "head": "main", "base": "main"})
    assert info.value.response.status_code == 422
    assert info.value.response.json()["errors"][0]["message"] == "No commits between main and main"
    # unknown route
    r = httpx.get(f"{emu.url}/repos/evals-org/mlflow/nope")
    assert r.status_code == 404 and r.json()["message"] == "Not Found"


def test_headers_versions_pagination_and_caching(world, checker):
    emu = world.emu
    token = world.token()
    for i in range(5):
        world.gh.rest.issues.create_label("evals-org", "mlflow", data={"name": f"l{i}"})
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"token {token}"}) as client:
        r = client.get(
            "/repos/evals-org/mlflow/labels", params={"per_page": 2}, headers={"X-GitHub-Api-Version": "2022-11-28"}
        )
        checker.check(r)
        assert r.headers["x-github-api-version-selected"] == "2022-11-28"
        for h in (
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-ratelimit-used",
            "x-ratelimit-resource",
            "x-github-request-id",
            "etag",
        ):
            assert h in r.headers
        assert [lb["name"] for lb in r.json()] == ["l0", "l1"]
        assert 'rel="next"' in r.headers["link"] and 'rel="last"' in r.headers["link"]
        r3 = client.get("/repos/evals-org/mlflow/labels", params={"per_page": 2, "page": 3})
        assert [lb["name"] for lb in r3.json()] == ["l4"] and 'rel="prev"' in r3.headers["link"]
        # conditional request: 304, free
        used = int(r3.headers["x-ratelimit-used"])
        r304 = client.get(
            "/repos/evals-org/mlflow/labels",
            params={"per_page": 2},
            headers={"If-None-Match": r.headers["etag"], "X-GitHub-Api-Version": "2022-11-28"},
        )
        assert r304.status_code == 304 and int(r304.headers["x-ratelimit-used"]) == used
        # 2022-11-28 vs 2026-03-10: DELETE installation answers 204 / 202; PR fields differ
        assert client.get("/repos/evals-org/mlflow", headers={"X-GitHub-Api-Version": "2021-01-01"}).status_code == 400
    emu.commit_files("evals-org/mlflow", {"f": "1"}, branch="b")
    n = world.gh.rest.pulls.create(
        "evals-org", "mlflow", data={"title": "T", "head": "b", "base": "main"}
    ).parsed_data.number
    old = httpx.get(f"{emu.url}/repos/evals-org/mlflow/pulls/{n}", headers={"X-GitHub-Api-Version": "2022-11-28"})
    new = httpx.get(f"{emu.url}/repos/evals-org/mlflow/pulls/{n}", headers={"X-GitHub-Api-Version": "2026-03-10"})
    checker.check(old)
    checker.check(new)
    assert "merge_commit_sha" in old.json() and "assignee" in old.json()
    assert "merge_commit_sha" not in new.json() and "assignee" not in new.json()
    inst = emu.install_app("evals-org", repositories="all", app=emu.register_app(slug="x", name="X"))
    app_x = emu.core.state.apps_by_slug["x"]
    bearer = jwt.encode(
        {"iat": int(time.time()) - 30, "exp": int(time.time()) + 300, "iss": str(app_x.id)},
        app_x.private_key_pem,
        algorithm="RS256",
    )
    r = httpx.delete(
        f"{emu.url}/app/installations/{inst.id}",
        headers={"Authorization": f"Bearer {bearer}", "X-GitHub-Api-Version": "2022-11-28"},
    )
    assert r.status_code == 204


def test_manifest_flow(world, checker):
    emu = world.emu
    manifest = {
        "name": "Tandem Dev",
        "url": "https://tandem.example",
        "redirect_url": "https://tandem.example/setup?x=1",
        "hook_attributes": {"url": "https://tandem.example/webhooks/github"},
        "default_events": ["issue_comment", "pull_request"],
        "default_permissions": {"issues": "write", "pull_requests": "write", "contents": "write"},
    }
    r = httpx.post(
        f"{emu.url}/organizations/evals-org/settings/apps/new",
        data={"manifest": json.dumps(manifest), "state": "abc123"},
        follow_redirects=False,
    )
    assert r.status_code == 302
    location = httpx.URL(r.headers["location"])
    assert str(location).startswith("https://tandem.example/setup?x=1&code=")
    assert location.params["state"] == "abc123"
    code = location.params["code"]
    conv = httpx.post(f"{emu.url}/app-manifests/{code}/conversions")
    assert conv.status_code == 201
    checker.check(conv)
    data = conv.json()
    assert data["owner"]["login"] == "evals-org" and data["slug"] == "tandem-dev"
    assert data["events"] == ["issue_comment", "pull_request"] and data["webhook_secret"]
    # the credentials work
    app_gh = world.client(AppAuthStrategy(data["id"], data["pem"]))
    assert app_gh.rest.apps.get_authenticated().parsed_data.slug == "tandem-dev"
    # a code works once
    assert httpx.post(f"{emu.url}/app-manifests/{code}/conversions").status_code == 404
    assert httpx.post(f"{emu.url}/app-manifests/nonsense/conversions").status_code == 404
    # the user-level form works too
    r = httpx.post(f"{emu.url}/settings/apps/new", data={"manifest": json.dumps({"name": "Other"})})
    assert r.status_code == 302 and "code=" in r.headers["location"]


def test_concurrent_clients_are_safe(world, hooks):
    emu = world.emu
    emu.set_webhook(hooks.url)
    token = world.token()
    errors: list[str] = []

    def worker(i: int) -> None:
        with httpx.Client(base_url=emu.url, headers={"Authorization": f"token {token}"}) as client:
            for j in range(6):
                r = client.post("/repos/evals-org/mlflow/issues/1/comments", json={"body": f"{i}-{j}"})
                if r.status_code != 201:
                    errors.append(r.text)
                client.get("/repos/evals-org/mlflow/issues/1/comments", params={"per_page": 100})

    emu.commit_files("evals-org/mlflow", {"x": "y"}, branch="c")
    world.gh.rest.pulls.create("evals-org", "mlflow", data={"title": "C", "head": "c", "base": "main"})
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    comments = [c for c in emu.core.state.issue_comments.values()]
    assert len(comments) == 48 and len({c.id for c in comments}) == 48
    assert emu.write_count(world.inst.id) == 49  # 48 comments + the pull request
    assert emu.drain(20)
    created = [h.json["comment"]["id"] for h in hooks.received if h.event == "issue_comment"]
    assert created == sorted(created) and len(created) == 48  # in the order they happened


def test_more_events_parse_and_match_their_schemas(tmp_path, checker, hooks):
    w = World(tmp_path, webhook_url=hooks.url)
    emu, gh = w.emu, w.gh
    w.app.events.append("check_run")  # subscribe (the installation keeps the app's events)
    w.inst.events.append("check_run")
    emu.commit_files("evals-org/mlflow", {"src/app.py": "x = 1\n"}, branch="arm")
    user = emu.as_user("octocat")
    pr = user.open_pull_request("evals-org/mlflow", head="arm", base="main", title="Arm", draft=True)
    user.mark_ready_for_review("evals-org/mlflow", pr.number)
    user.convert_to_draft("evals-org/mlflow", pr.number)
    user.close_pull_request("evals-org/mlflow", pr.number)
    user.reopen_pull_request("evals-org/mlflow", pr.number)
    user.request_review("evals-org/mlflow", pr.number, team_reviewers=["raters"])
    user.push("evals-org/mlflow", {"src/app.py": "x = 2\n"}, branch="arm")
    run = gh.rest.checks.create("evals-org", "mlflow", data={"name": "t", "head_sha": pr.head.sha}).parsed_data
    gh.rest.checks.update("evals-org", "mlflow", run.id, data={"status": "completed", "conclusion": "neutral"})
    emu.as_user("hubot").submit_review("evals-org/mlflow", pr.number, event="REQUEST_CHANGES", body="no")
    emu.suspend(w.inst.id)
    emu.as_user("octocat").comment("evals-org/mlflow", pr.number, "not delivered: suspended")
    emu.unsuspend(w.inst.id)
    emu.uninstall_app(w.inst.id)
    assert emu.drain(10)
    assert hooks.events() == [
        ("installation", "created"),
        ("pull_request", "opened"),
        ("pull_request", "ready_for_review"),
        ("pull_request", "converted_to_draft"),
        ("pull_request", "closed"),
        ("pull_request", "reopened"),
        ("pull_request", "review_requested"),
        ("pull_request", "synchronize"),
        ("check_run", "created"),
        ("check_run", "completed"),
        ("pull_request_review", "submitted"),
        ("installation", "suspend"),
        ("installation", "unsuspend"),
        ("installation", "deleted"),
    ]
    for hook in hooks.received:
        checker.check_webhook(hook.event, hook.body)
    assert hooks.received[6].json["requested_team"]["slug"] == "raters"
    assert hooks.received[-1].json["installation"]["id"] == w.inst.id
    # an uninstalled app's tokens stop working
    with pytest.raises(RequestFailed) as info:
        gh.rest.repos.get("evals-org", "mlflow")
    assert info.value.response.status_code == 401
    w.stop()


def test_commits_do_not_depend_on_the_files_where_the_emulator_process_runs(tmp_path, monkeypatch):
    """The sandbox runs where its user works: a file there at a path a commit changes once made
    git refuse the commit (its private index was checked against the process's directory)."""
    here = tmp_path / "cwd"
    (here / "src").mkdir(parents=True)
    (here / "src" / "app.py").write_text("a local file\n")
    monkeypatch.chdir(here)
    with GitHubEmulator(root=tmp_path / "github") as emu:
        emu.create_org("evals-org")
        emu.create_repository("evals-org", "mlflow", files={"src/app.py": "main\n"})
        emu.commit_files("evals-org/mlflow", {"src/app.py": "side\n"}, branch="side")
        sha = emu.commit_files("evals-org/mlflow", {"src/app.py": "edited\n"}, branch="side")
        assert emu.repo("evals-org/mlflow").git.text("show", f"{sha}:src/app.py") == "edited\n"
