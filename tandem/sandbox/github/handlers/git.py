"""Git database (refs, blobs, trees, commits) and the contents API.

Everything is read from / written to the repository's bare git directory with
the git CLI, so the API and ``git clone``/``git push`` always agree.
"""

from __future__ import annotations

import base64
import binascii
import re
import subprocess
from typing import Any
from urllib.parse import quote

from .. import errors
from ..api import Ctx, Reply, handler
from ..domain.base import person
from ..errors import ApiError
from ..gitrepo import _ENV as GIT_ENV
from ..gitrepo import ZERO_SHA, Person
from ..state import Repository
from ..util import node_id, q

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
VALID_MODES = {"100644", "100755", "040000", "160000", "120000"}


def _api(ctx: Ctx, repo: Repository) -> str:
    return f"{ctx.base}/repos/{q(repo.owner.login)}/{q(repo.name)}"


def _ref_value(ctx: Ctx, repo: Repository, ref: str, sha: str) -> dict:
    otype = repo.git.object_type(sha) or "commit"
    kind = {"commit": "commits", "tag": "tags", "tree": "trees", "blob": "blobs"}[otype]
    return {
        "ref": ref,
        "node_id": node_id("Ref", repo.id) + base64.b64encode(ref.encode()).decode().rstrip("="),
        "url": f"{_api(ctx, repo)}/git/{quote(ref, safe='/')}",
        "object": {"type": otype, "sha": sha, "url": f"{_api(ctx, repo)}/git/{kind}/{sha}"},
    }


def _full_ref(ref: str) -> str:
    ref = ref.strip("/")
    return ref if ref.startswith("refs/") else f"refs/{ref}"


# ---------------------------------------------------------------------- refs


@handler("git/get-ref")
def get_ref(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    ref = _full_ref(ctx.params["ref"])
    sha = ctx.snap.refs(repo).get(ref)
    if sha is None:
        raise errors.not_found()
    return Reply(200, _ref_value(ctx, repo, ref, sha))


@handler("git/list-matching-refs")
def matching_refs(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    prefix = _full_ref(ctx.params["ref"]) if ctx.params["ref"] else "refs/"
    refs = sorted(
        (r, s)
        for r, s in ctx.snap.refs(repo).items()
        if r.startswith(prefix) and not r.startswith(("refs/pull/", "refs/emulator/"))
    )
    return Reply(200, [_ref_value(ctx, repo, r, s) for r, s in refs])


@handler("git/create-ref")
def create_ref(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    body = ctx.body_dict
    ref, sha = body.get("ref"), body.get("sha")
    if not isinstance(ref, str) or not ref.startswith("refs/") or ref.count("/") < 2:
        raise errors.validation(message="Reference name is invalid")
    if ref.startswith("refs/pull/") or not _valid_ref_name(ref):
        raise errors.validation(message="Reference name is invalid")
    if not isinstance(sha, str) or repo.git.object_type(sha) is None:
        raise errors.validation(message="Object does not exist")
    with repo.git.lock:
        if repo.git.ref_sha(ref) is not None:
            raise errors.validation(message="Reference already exists")
        repo.git.update_ref(ref, sha, ZERO_SHA)
    ctx.domain.on_ref_updated(repo, ref, None, sha, ctx.actor)
    ctx.snap.invalidate(repo)
    return Reply(201, _ref_value(ctx, repo, ref, sha), {"location": f"{_api(ctx, repo)}/git/{ref}"})


def _valid_ref_name(ref: str) -> bool:
    return subprocess.run(["git", "check-ref-format", ref], env=GIT_ENV, capture_output=True).returncode == 0


@handler("git/update-ref")
def update_ref(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    ref = _full_ref(ctx.params["ref"])
    body = ctx.body_dict
    sha = body.get("sha")
    if not isinstance(sha, str) or repo.git.object_type(sha) != "commit":
        raise errors.validation(message="Object does not exist")
    with repo.git.lock:
        old = repo.git.ref_sha(ref)
        if old is None:
            raise errors.validation(message="Reference does not exist")
        if not body.get("force") and not repo.git.is_ancestor(old, sha):
            raise errors.validation(message="Update is not a fast forward")
        repo.git.update_ref(ref, sha, old)
    ctx.domain.on_ref_updated(repo, ref, old, sha, ctx.actor)
    ctx.snap.invalidate(repo)
    return Reply(200, _ref_value(ctx, repo, ref, sha))


@handler("git/delete-ref")
def delete_ref(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    ref = _full_ref(ctx.params["ref"])
    with repo.git.lock:
        old = repo.git.ref_sha(ref)
        if old is None:
            raise errors.validation(message="Reference does not exist")
        repo.git.delete_ref(ref)
    ctx.domain.on_ref_updated(repo, ref, old, None, ctx.actor)
    return Reply(204)


# ---------------------------------------------------------------------- blobs & trees


@handler("git/create-blob")
def create_blob(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    body = ctx.body_dict
    content = body.get("content")
    if not isinstance(content, str):
        raise errors.missing_field("Blob", "content")
    encoding = body.get("encoding", "utf-8")
    if encoding == "base64":
        try:
            data = base64.b64decode(content, validate=False)
        except (binascii.Error, ValueError):
            raise errors.validation(message="Invalid Base64 content") from None
    elif encoding in ("utf-8", "utf8"):
        data = content.encode("utf-8")
    else:
        raise errors.validation(message="encoding must be either 'utf-8' or 'base64'")
    sha = repo.git.write_blob(data)
    return Reply(
        201,
        {"url": f"{_api(ctx, repo)}/git/blobs/{sha}", "sha": sha},
        {"location": f"{_api(ctx, repo)}/git/blobs/{sha}"},
    )


def _tree_value(ctx: Ctx, repo: Repository, sha: str, recursive: bool) -> dict:
    entries = []
    for e in repo.git.ls_tree(sha, recursive=recursive):
        kind = {"blob": "blobs", "tree": "trees", "commit": "commits"}[e.type]
        item: dict[str, Any] = {"path": e.path, "mode": e.mode, "type": e.type, "sha": e.sha}
        if e.type == "blob":
            item["size"] = e.size
        if e.type != "commit":
            item["url"] = f"{_api(ctx, repo)}/git/{kind}/{e.sha}"
        entries.append(item)
    return {"sha": sha, "url": f"{_api(ctx, repo)}/git/trees/{sha}", "tree": entries, "truncated": False}


@handler("git/create-tree")
def create_tree(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    body = ctx.body_dict
    items = body.get("tree")
    if not isinstance(items, list):
        raise errors.missing_field("Tree", "tree")
    base_tree = body.get("base_tree")
    git = repo.git
    if base_tree is not None and git.object_type(base_tree) != "tree":
        raise errors.validation(
            message="Invalid tree info", errors=[{"resource": "Tree", "field": "base_tree", "code": "invalid"}]
        )
    changes = []
    for i, item in enumerate(items):
        path, mode, otype = item.get("path"), item.get("mode"), item.get("type")
        if not path or mode not in VALID_MODES or otype not in ("blob", "tree", "commit"):
            raise errors.validation(message="Invalid tree info", errors=[f"tree.{i} is invalid"])
        if "content" in item and item["content"] is not None:
            sha = git.write_blob(str(item["content"]).encode("utf-8"))
        else:
            sha = item.get("sha")
            if sha is not None:
                actual = git.object_type(sha)
                if otype != "commit" and actual != otype:
                    raise errors.validation(message=f"tree.sha {sha} is not a valid {otype}")
        changes.append({"path": path, "mode": mode, "type": otype, "sha": sha})
    with git.lock:
        tree = git.build_tree(base_tree, changes)
    return Reply(
        201, _tree_value(ctx, repo, tree, recursive=False), {"location": f"{_api(ctx, repo)}/git/trees/{tree}"}
    )


@handler("git/get-tree")
def get_tree(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    ref = ctx.params["tree_sha"]
    git = repo.git
    sha = None
    if SHA_RE.match(ref) and git.object_type(ref) == "tree":
        sha = ref
    else:
        commit = git.resolve(ref)
        if commit is not None:
            sha = git.tree_of(commit)
    if sha is None:
        raise errors.not_found()
    recursive = "recursive" in ctx.query and ctx.query["recursive"] not in ("", "0", "false")
    return Reply(200, _tree_value(ctx, repo, sha, recursive))


# ---------------------------------------------------------------------- commits


def _person_value(p: Person) -> dict:
    return {"name": p.name, "email": p.email, "date": p.date}


def commit_value(ctx: Ctx, repo: Repository, sha: str) -> dict:
    info = repo.git.read_commit(sha)
    if info is None:
        raise errors.not_found()
    api = _api(ctx, repo)
    html = f"{ctx.base}/{q(repo.owner.login)}/{q(repo.name)}"
    return {
        "sha": info.sha,
        "node_id": node_id("Commit", repo.id) + info.sha[:12],
        "url": f"{api}/git/commits/{info.sha}",
        "html_url": f"{html}/commit/{info.sha}",
        "author": _person_value(info.author),
        "committer": _person_value(info.committer),
        "tree": {"sha": info.tree, "url": f"{api}/git/trees/{info.tree}"},
        "message": info.message[:-1] if info.message.endswith("\n") else info.message,
        "parents": [
            {"sha": p, "url": f"{api}/git/commits/{p}", "html_url": f"{html}/commit/{p}"} for p in info.parents
        ],
        "verification": {
            "verified": False,
            "reason": "unsigned",
            "signature": None,
            "payload": None,
            "verified_at": None,
        },
    }


def _person_from(body_person, default: Person) -> Person:
    if not isinstance(body_person, dict):
        return default
    name, email = body_person.get("name"), body_person.get("email")
    if not name or not email:
        raise errors.validation(message='Invalid request.\n\n"name" and "email" are required.')
    return Person(name=name, email=email, date=body_person.get("date") or default.date)


@handler("git/create-commit")
def create_commit(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    body = ctx.body_dict
    git = repo.git
    message, tree, parents = body.get("message"), body.get("tree"), body.get("parents") or []
    if not isinstance(message, str):
        raise errors.missing_field("Commit", "message")
    if not isinstance(tree, str) or git.object_type(tree) != "tree":
        raise errors.validation(message="Tree SHA does not exist")
    for p in parents:
        if git.object_type(p) != "commit":
            raise errors.validation(message="Parent SHA does not exist or is not a commit object")
    default = person(ctx.actor)
    author = _person_from(body.get("author"), default)
    committer = _person_from(body.get("committer"), author if body.get("author") else default)
    sha = git.commit_tree(tree, parents, message, author, committer)
    return Reply(201, commit_value(ctx, repo, sha), {"location": f"{_api(ctx, repo)}/git/commits/{sha}"})


@handler("git/get-commit")
def get_commit(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    sha = ctx.params["commit_sha"]
    if repo.git.object_type(sha) != "commit":
        raise errors.not_found()
    return Reply(200, commit_value(ctx, repo, sha))


# ---------------------------------------------------------------------- contents


def _content_urls(ctx: Ctx, repo: Repository, path: str, sha: str, ref: str, otype: str) -> dict:
    api = _api(ctx, repo)
    qpath = quote(path)
    self_url = f"{api}/contents/{qpath}?ref={quote(ref, safe='')}"
    kind = "tree" if otype == "dir" else "blob"
    html = f"{ctx.base}/{q(repo.owner.login)}/{q(repo.name)}/{kind}/{quote(ref, safe='')}/{qpath}"
    git_url = f"{api}/git/{'trees' if otype == 'dir' else 'blobs'}/{sha}"
    return {
        "url": self_url,
        "html_url": html,
        "git_url": git_url,
        "download_url": (
            f"{ctx.base}/_raw/{q(repo.owner.login)}/{q(repo.name)}/{quote(ref, safe='')}/{qpath}"
            if otype == "file"
            else None
        ),
        "_links": {"self": self_url, "git": git_url, "html": html},
    }


def _entry_value(ctx: Ctx, repo: Repository, entry, ref: str) -> dict:
    otype = {"blob": "file", "tree": "dir", "commit": "submodule"}[entry.type]
    if entry.mode == "120000":
        otype = "symlink"
    v = {
        "type": otype,
        "size": entry.size or 0,
        "name": entry.path.rsplit("/", 1)[-1],
        "path": entry.path,
        "sha": entry.sha,
    }
    v.update(_content_urls(ctx, repo, entry.path, entry.sha, ref, otype))
    return v


def _b64_lines(data: bytes) -> str:
    """Base64 in 60-column lines, each ending with a newline, as GitHub sends it."""
    text = base64.b64encode(data).decode()
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


@handler("repos/get-content")
def get_content(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    git = repo.git
    ref = ctx.query.get("ref") or repo.default_branch
    commit = git.resolve(ref)
    if commit is None:
        if not ctx.snap.refs(repo):
            raise ApiError(404, "This repository is empty.")
        raise ApiError(404, f"No commit found for the ref {ref}")
    path = ctx.params["path"].strip("/")
    entry = git.entry_at(commit, path)
    if entry is None:
        raise errors.not_found()
    accept = ctx.headers.get("accept", "")
    if entry.type == "tree":
        children = [_entry_value(ctx, repo, e, ref) for e in git.ls_tree(entry.sha)]
        for c in children:  # ls-tree of a tree object lists names relative to it
            c["path"] = f"{path}/{c['name']}" if path else c["name"]
            c.update(_content_urls(ctx, repo, c["path"], c["sha"], ref, c["type"]))
        if "object" in accept:
            value = {
                "type": "dir",
                "size": 0,
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "sha": entry.sha,
                "entries": children,
                **_content_urls(ctx, repo, path, entry.sha, ref, "dir"),
            }
            return Reply(200, value)
        return Reply(200, children)
    data = git.read_blob(entry.sha) if entry.type == "blob" else b""
    if "raw" in accept and entry.type == "blob":
        return Reply(200, raw=data, content_type="application/vnd.github.raw")
    value = _entry_value(ctx, repo, entry, ref)
    if value["type"] == "symlink":
        value["target"] = data.decode("utf-8", errors="replace")
    elif value["type"] == "submodule":
        value["submodule_git_url"] = ""
    else:
        value["content"] = _b64_lines(data)
        value["encoding"] = "base64"
    return Reply(200, value)


def _branch_head(ctx: Ctx, repo: Repository, branch: str | None) -> tuple[str, str | None]:
    branch = branch or repo.default_branch
    sha = repo.git.ref_sha(f"refs/heads/{branch}")
    if sha is None and ctx.snap.refs(repo):
        raise ApiError(404, f"Branch {branch} not found")
    return branch, sha


def _file_commit(ctx: Ctx, repo: Repository, path: str, branch: str, sha: str, blob: str | None) -> dict:
    content = None
    if blob is not None:
        entry = repo.git.entry_at(sha, path)
        content = _entry_value(ctx, repo, entry, branch)
    commit = commit_value(ctx, repo, sha)
    return {"content": content, "commit": commit}


@handler("repos/create-or-update-file-contents")
def put_content(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    body = ctx.body_dict
    path = ctx.params["path"].strip("/")
    if not body.get("message"):
        raise errors.validation(message='Invalid request.\n\n"message" wasn\'t supplied.')
    if not isinstance(body.get("content"), str):
        raise errors.validation(message='Invalid request.\n\n"content" wasn\'t supplied.')
    try:
        data = base64.b64decode(body["content"], validate=False)
    except (binascii.Error, ValueError):
        raise errors.validation(message="content is not valid Base64") from None
    git = repo.git
    with git.lock:
        branch, parent = _branch_head(ctx, repo, body.get("branch"))
        existing = git.entry_at(parent, path) if parent else None
        if existing is not None and existing.type == "tree":
            raise errors.validation(message=f"{path} is a directory")
        if existing is not None:
            if not body.get("sha"):
                raise errors.validation(message='Invalid request.\n\n"sha" wasn\'t supplied.')
            if body["sha"] != existing.sha:
                raise ApiError(409, f"{path} does not match {body['sha']}")
        blob = git.write_blob(data)
        tree = git.build_tree(
            git.tree_of(parent) if parent else None, [{"path": path, "mode": "100644", "type": "blob", "sha": blob}]
        )
        default = person(ctx.actor)
        committer = _person_from(body.get("committer"), default)
        author = _person_from(body.get("author"), committer)
        sha = git.commit_tree(tree, [parent] if parent else [], body["message"], author, committer)
        git.update_ref(f"refs/heads/{branch}", sha, parent or ZERO_SHA)
    ctx.domain.on_ref_updated(repo, f"refs/heads/{branch}", parent, sha, ctx.actor)
    return Reply(200 if existing is not None else 201, _file_commit(ctx, repo, path, branch, sha, blob))


@handler("repos/delete-file")
def delete_content(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    body = ctx.body_dict
    path = ctx.params["path"].strip("/")
    if not body.get("message"):
        raise errors.validation(message='Invalid request.\n\n"message" wasn\'t supplied.')
    if not body.get("sha"):
        raise errors.validation(message='Invalid request.\n\n"sha" wasn\'t supplied.')
    git = repo.git
    with git.lock:
        branch, parent = _branch_head(ctx, repo, body.get("branch"))
        existing = git.entry_at(parent, path) if parent else None
        if parent is None or existing is None or existing.type != "blob":
            raise errors.not_found()
        if body["sha"] != existing.sha:
            raise ApiError(409, f"{path} does not match {body['sha']}")
        tree = git.build_tree(git.tree_of(parent), [{"path": path, "sha": None}])
        default = person(ctx.actor)
        committer = _person_from(body.get("committer"), default)
        author = _person_from(body.get("author"), committer)
        sha = git.commit_tree(tree, [parent], body["message"], author, committer)
        git.update_ref(f"refs/heads/{branch}", sha, parent)
    ctx.domain.on_ref_updated(repo, f"refs/heads/{branch}", parent, sha, ctx.actor)
    return Reply(200, _file_commit(ctx, repo, path, branch, sha, None))
