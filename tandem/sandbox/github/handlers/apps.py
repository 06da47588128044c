"""The app itself (JWT), its installations and tokens, webhook deliveries,
manifest conversions, rate limits, users, org membership."""

from __future__ import annotations

from urllib.parse import urlencode

from .. import errors
from ..api import Ctx, Reply, handler
from ..errors import ApiError
from ..state import Delivery, Installation
from ..util import iso


def _installation(ctx: Ctx) -> Installation:
    inst = ctx.state.installations.get(ctx.params["installation_id"])
    if inst is None or inst.deleted or inst.app is not ctx.auth.app:
        raise errors.not_found()
    return inst


@handler("apps/get-authenticated")
def get_app(ctx: Ctx) -> Reply:
    return Reply(200, ctx.views.integration(ctx.auth.app))


@handler("apps/list-installations")
def list_installations(ctx: Ctx) -> Reply:
    with ctx.state.lock:
        insts = [i for i in ctx.state.installations.values() if i.app is ctx.auth.app and not i.deleted]
        since = ctx.query.get("since")
        if since:
            insts = [i for i in insts if i.updated_at >= since]
        page, headers = ctx.paginate(sorted(insts, key=lambda i: i.id))
        return Reply(200, [ctx.views.installation(i) for i in page], headers)


@handler("apps/get-installation")
def get_installation(ctx: Ctx) -> Reply:
    return Reply(200, ctx.views.installation(_installation(ctx)))


@handler("apps/delete-installation")
def delete_installation(ctx: Ctx) -> Reply:
    inst = _installation(ctx)
    ctx.domain.uninstall(inst, ctx.auth.app_required.owner)
    # 204 in 2022-11-28; 202 from 2026-03-10 (x-github-breaking-changes).
    return Reply(204 if ctx.op.has_status(204) else 202)


@handler("apps/suspend-installation")
def suspend_installation(ctx: Ctx) -> Reply:
    ctx.domain.suspend(_installation(ctx), ctx.auth.app_required.owner, True)
    return Reply(204)


@handler("apps/unsuspend-installation")
def unsuspend_installation(ctx: Ctx) -> Reply:
    inst = _installation(ctx)
    if not inst.suspended_at:
        raise errors.not_found()
    ctx.domain.suspend(inst, ctx.auth.app_required.owner, False)
    return Reply(204)


@handler("apps/create-installation-access-token")
def create_token(ctx: Ctx) -> Reply:
    inst = _installation(ctx)
    if inst.suspended_at:
        raise ApiError(403, "This installation has been suspended")
    body = ctx.body_dict
    with ctx.state.lock:
        available = {r.id: r for r in ctx.state.installation_repos(inst)}
        repo_ids: set[int] | None = None
        names, ids = body.get("repositories"), body.get("repository_ids")
        if names or ids:
            repo_ids = set()
            by_name = {r.name.lower(): r for r in available.values()}
            for name in names or []:
                repo = by_name.get(str(name).lower())
                if repo is None:
                    raise errors.validation(
                        message="There is at least one repository that does not exist "
                        "or is not accessible to the parent installation."
                    )
                repo_ids.add(repo.id)
            for rid in ids or []:
                if rid not in available:
                    raise errors.validation(
                        message="There is at least one repository that does not exist "
                        "or is not accessible to the parent installation."
                    )
                repo_ids.add(rid)
        permissions = body.get("permissions")
        if permissions:
            for name, level in permissions.items():
                granted = inst.permissions.get(name)
                if granted is None or (granted == "read" and level in ("write", "admin")):
                    raise errors.validation(message="The permissions requested are not granted to this installation.")
        token = ctx.core.auth.issue_token(inst, permissions or None, repo_ids)
        value = {
            "token": token.token,
            "expires_at": iso(token.expires_at),
            "permissions": token.permissions,
            "repository_selection": "selected" if repo_ids is not None else inst.repository_selection,
        }
        if repo_ids is not None:
            value["repositories"] = [ctx.views.repo(available[i]) for i in sorted(repo_ids)]
    return Reply(201, value)


@handler("apps/get-repo-installation")
def get_repo_installation(ctx: Ctx) -> Reply:
    repo = ctx.state.repo(ctx.params["owner"], ctx.params["repo"])
    inst = ctx.state.installation_for_repo(ctx.auth.app, repo) if repo else None
    if inst is None:
        raise errors.not_found()
    return Reply(200, ctx.views.installation(inst))


@handler("apps/list-repos-accessible-to-installation")
def list_installation_repos(ctx: Ctx) -> Reply:
    if ctx.auth.kind != "installation":
        raise ApiError(
            403,
            "You must authenticate with an installation access token in order to list "
            "repositories for an installation.",
        )
    with ctx.state.lock:
        repos = [r for r in ctx.state.installation_repos(ctx.auth.installation) if ctx.in_scope(r)]
        page, headers = ctx.paginate(repos)
        return Reply(
            200,
            {
                "total_count": len(repos),
                "repositories": [ctx.views.repo(r) for r in page],
                "repository_selection": ctx.auth.installation_required.repository_selection,
            },
            headers,
        )


# ---------------------------------------------------------------------- webhook deliveries


def _delivery_item(d: Delivery) -> dict:
    return {
        "id": d.id,
        "guid": d.guid,
        "delivered_at": d.delivered_at or iso(),
        "redelivery": d.redelivery,
        "duration": d.duration,
        "status": d.status,
        "status_code": d.status_code,
        "event": d.event,
        "action": d.action,
        "installation_id": d.installation_id,
        "repository_id": d.repository_id,
        "throttled_at": None,
    }


@handler("apps/list-webhook-deliveries")
def list_deliveries(ctx: Ctx) -> Reply:
    per_page = min(max(ctx.q_int("per_page", 30), 1), 100)
    cursor = ctx.query.get("cursor")
    status = ctx.query.get("status")
    with ctx.state.lock:
        items = [d for d in reversed(ctx.state.deliveries) if d.app is ctx.auth.app]
        if status in ("success", "failure"):
            items = [d for d in items if d.ok == (status == "success")]
        if cursor:
            if not cursor.startswith("v1_") or not cursor[3:].isdigit():
                raise ApiError(400, "Invalid cursor")
            below = int(cursor[3:])
            items = [d for d in items if d.id < below]
        page = items[:per_page]
        headers = {}
        if len(items) > per_page:
            query = {"per_page": per_page, "cursor": f"v1_{page[-1].id}"}
            if status:
                query["status"] = status
            headers["link"] = f'<{ctx.base}/app/hook/deliveries?{urlencode(query)}>; rel="next"'
        return Reply(200, [_delivery_item(d) for d in page], headers)


def _delivery(ctx: Ctx) -> Delivery:
    d = ctx.state.deliveries_by_id.get(ctx.params["delivery_id"])
    if d is None or d.app is not ctx.auth.app:
        raise errors.not_found()
    return d


@handler("apps/get-webhook-delivery")
def get_delivery(ctx: Ctx) -> Reply:
    d = _delivery(ctx)
    with ctx.state.lock:
        value = _delivery_item(d)
        value["url"] = d.url or ""
        value["request"] = {"headers": dict(d.request_headers), "payload": d.payload}
        value["response"] = {"headers": dict(d.response_headers), "payload": d.response_body or None}
    return Reply(200, value)


@handler("apps/redeliver-webhook-delivery")
def redeliver(ctx: Ctx) -> Reply:
    d = _delivery(ctx)
    again = ctx.core.dispatcher.build(
        d.app,
        d.event,
        d.action,
        {},
        d.installation_id,
        d.repository_id,
        delivery_guid=d.guid,
        redelivery=True,
        raw_body=d.body,
    )
    ctx.core.dispatcher.enqueue(again)
    return Reply(202, {})


@handler("apps/create-from-manifest")
def convert_manifest(ctx: Ctx) -> Reply:
    return Reply(201, ctx.core.manifests.convert(ctx.params["code"]))


# ---------------------------------------------------------------------- misc


@handler("rate-limit/get")
def rate_limit(ctx: Ctx) -> Reply:
    core = ctx.core.limits.snapshot(ctx.core.identity(ctx.auth))
    reset = core["reset"]

    def other(limit: int) -> dict:
        return {"limit": limit, "remaining": limit, "reset": reset, "used": 0}

    return Reply(
        200,
        {
            "resources": {
                "core": core,
                "search": other(30),
                "graphql": other(5000),
                "code_search": other(10),
                "integration_manifest": other(5000),
                "source_import": other(100),
                "actions_runner_registration": other(10000),
                "scim": other(15000),
                "dependency_snapshots": other(100),
                "dependency_sbom": other(100),
                "code_scanning_autofix": other(10),
            },
            "rate": core,
        },
    )


@handler("users/get-by-username")
def get_user(ctx: Ctx) -> Reply:
    acc = ctx.account(ctx.params["username"])
    return Reply(200, ctx.views.user_full(acc))


@handler("orgs/check-membership-for-user")
def check_membership(ctx: Ctx) -> Reply:
    org = ctx.state.account(ctx.params["org"])
    if org is None or not org.is_org:
        raise errors.not_found()
    if ctx.params["username"].lower() not in org.members:
        raise ApiError(404, "User does not exist or is not a member of the organization")
    return Reply(204)


@handler("teams/get-membership-for-user-in-org")
def team_membership(ctx: Ctx) -> Reply:
    org = ctx.state.account(ctx.params["org"])
    if org is None or not org.is_org:
        raise errors.not_found()
    team = org.teams.get(ctx.params["team_slug"].lower())
    login = ctx.params["username"]
    if team is None or login.lower() not in team.members:
        raise errors.not_found()
    acc = ctx.state.account(login)
    return Reply(
        200,
        {
            "url": f"{ctx.base}/organizations/{org.id}/team/{team.id}/memberships/{acc.login}",
            "role": team.members[login.lower()],
            "state": "active",
        },
    )
