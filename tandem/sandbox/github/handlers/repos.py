"""Repositories: get/update, collaborator permission, forks, repository labels."""

from __future__ import annotations

from .. import errors
from ..api import Ctx, Reply, handler
from ..errors import ApiError
from ..state import Account, Repository
from ..util import iso

LEGACY_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}


def role_of(repo: Repository, acc: Account) -> str:
    """The user's role on the repository, GitHub's way."""
    login = acc.login.lower()
    if repo.owner is acc:
        return "admin"
    if repo.owner.is_org and repo.owner.members.get(login) == "admin":
        return "admin"
    if login in repo.collaborators:
        return repo.collaborators[login]
    if repo.owner.is_org and login in repo.owner.members:
        return "read"  # the organization's default base permission
    return "read" if not repo.private else "none"


def _permissions(ctx: Ctx) -> dict | None:
    if ctx.auth.kind != "installation":
        return None
    perms = ctx.auth.token_required.permissions
    push = perms.get("contents") == "write"
    return {
        "admin": perms.get("administration") == "write",
        "maintain": False,
        "push": push,
        "triage": push or perms.get("issues") == "write",
        "pull": True,
    }


@handler("repos/get")
def get_repo(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        return Reply(200, ctx.views.repo(repo, permissions=_permissions(ctx)))


@handler("repos/update")
def update_repo(ctx: Ctx) -> Reply:
    repo = ctx.repo(write=True, allow_archived=True)  # unarchiving must work
    body = ctx.body_dict
    with ctx.state.lock:
        if "default_branch" in body:
            if ctx.snap.branch_sha(repo, body["default_branch"]) is None:
                raise errors.custom(
                    "Repository",
                    "default_branch",
                    f"Cannot update default branch for this repository to {body['default_branch']}",
                )
            repo.default_branch = body["default_branch"]
        if "name" in body and body["name"] != repo.name:
            other = ctx.state.repo(repo.owner.login, body["name"])
            if other is not None:
                raise errors.custom("Repository", "name", "name already exists on this account")
            del ctx.state.repos[repo.full_name.lower()]
            repo.name = body["name"]
            ctx.state.repos[repo.full_name.lower()] = repo
        for key in (
            "description",
            "homepage",
            "has_issues",
            "has_projects",
            "has_wiki",
            "has_discussions",
            "is_template",
            "allow_forking",
            "archived",
        ):
            if key in body:
                setattr(repo, key, body[key])
        if "private" in body:
            repo.private = bool(body["private"])
        if body.get("visibility") in ("public", "private"):
            repo.private = body["visibility"] == "private"
        repo.updated_at = iso()
        return Reply(200, ctx.views.repo(repo, permissions=_permissions(ctx)))


@handler("repos/get-collaborator-permission-level")
def collaborator_permission(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    acc = ctx.state.account(ctx.params["username"])
    if acc is None or acc.is_org:
        raise ApiError(404, f"{ctx.params['username']} is not a user")
    with ctx.state.lock:
        role = role_of(repo, acc)
        user = ctx.views.user(acc)
        user["permissions"] = {
            "admin": role == "admin",
            "maintain": role in ("admin", "maintain"),
            "push": role in ("admin", "maintain", "write"),
            "triage": role in ("admin", "maintain", "write", "triage"),
            "pull": role != "none",
        }
        user["role_name"] = role
        return Reply(200, {"permission": LEGACY_PERMISSION[role], "role_name": role, "user": user})


@handler("repos/list-forks")
def list_forks(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        forks = [r for r in ctx.state.repos_by_id.values() if r.fork_of is repo and not r.deleted and ctx.can_read(r)]
        sort = ctx.query.get("sort", "newest")
        forks.sort(key=lambda r: r.id, reverse=sort != "oldest")
        page, headers = ctx.paginate(forks)
        return Reply(200, [ctx.views.repo(r, with_parent=False) for r in page], headers)


@handler("repos/create-fork")
def create_fork(ctx: Ctx) -> Reply:
    source = ctx.repo(write=False)
    body = ctx.body_dict
    org_name = body.get("organization")
    if ctx.auth.kind != "installation":
        raise ApiError(401, "Requires authentication")
    if not org_name:
        # An installation token is not a user: there is no account to fork into.
        raise errors.forbidden_integration()
    org = ctx.state.account(org_name)
    if org is None or not org.is_org:
        raise errors.invalid_field("Fork", "organization")
    if org is not ctx.auth.installation_required.account:
        raise errors.forbidden_integration()
    name = body.get("name") or source.name
    if org is source.owner and name.lower() == source.name.lower():
        raise errors.custom("Repository", "name", "name already exists on this account")
    fork = ctx.domain.fork(source, org, name, bool(body.get("default_branch_only")))
    with ctx.state.lock:
        return Reply(202, ctx.views.repo(fork, permissions=_permissions(ctx)))


# ---------------------------------------------------------------------- repository labels


def _label(ctx: Ctx, repo: Repository):
    label = repo.labels.get(ctx.params["name"].lower())
    if label is None:
        raise errors.not_found()
    return label


@handler("issues/list-labels-for-repo")
def list_labels(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        labels = sorted(repo.labels.values(), key=lambda lb: lb.name.lower())
        page, headers = ctx.paginate(labels)
        return Reply(200, [ctx.views.label(repo, lb) for lb in page], headers)


@handler("issues/create-label")
def create_label(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    body = ctx.body_dict
    label = ctx.domain.create_label(repo, body.get("name"), body.get("color"), body.get("description"))
    return Reply(201, ctx.views.label(repo, label))


@handler("issues/get-label")
def get_label(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    return Reply(200, ctx.views.label(repo, _label(ctx, repo)))


@handler("issues/update-label")
def update_label(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    body = ctx.body_dict
    with ctx.state.lock:
        label = _label(ctx, repo)
        new_name = body.get("new_name")
        if new_name and new_name.lower() != label.name.lower():
            if new_name.lower() in repo.labels:
                raise errors.invalid_field("Label", "name", "already_exists")
            del repo.labels[label.name.lower()]
            repo.labels[new_name.lower()] = label
        if new_name:
            label.name = new_name
        if body.get("color"):
            label.color = body["color"].lstrip("#").lower()
        if "description" in body:
            label.description = body["description"]
        return Reply(200, ctx.views.label(repo, label))


@handler("issues/delete-label")
def delete_label(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        label = _label(ctx, repo)
        del repo.labels[label.name.lower()]
        for issue in repo.issues.values():
            if label in issue.labels:
                issue.labels.remove(label)
    return Reply(204)
