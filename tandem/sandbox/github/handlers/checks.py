"""Check runs (created and updated by the app that owns them)."""

from __future__ import annotations

from .. import errors
from ..api import Ctx, Reply, handler
from ..errors import ApiError
from ..state import CheckRun, Repository


def _run(ctx: Ctx, repo: Repository) -> CheckRun:
    run = ctx.state.check_runs.get(ctx.params["check_run_id"])
    if run is None or run.repo is not repo:
        raise errors.not_found()
    return run


@handler("checks/create")
def create_check_run(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    if ctx.auth.kind != "installation":
        raise ApiError(403, "You must authenticate via a GitHub App.")
    run = ctx.domain.create_check_run(repo, ctx.auth.app, ctx.body_dict)
    with ctx.state.lock:
        return Reply(201, ctx.views.check_run(run, ctx.snap))


@handler("checks/get")
def get_check_run(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    with ctx.state.lock:
        return Reply(200, ctx.views.check_run(_run(ctx, repo), ctx.snap))


@handler("checks/update")
def update_check_run(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    run = _run(ctx, repo)
    if run.app is not ctx.auth.app:
        raise errors.forbidden_integration()
    ctx.domain.update_check_run(run, ctx.body_dict)
    with ctx.state.lock:
        return Reply(200, ctx.views.check_run(run, ctx.snap))


@handler("checks/list-for-ref")
def list_for_ref(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    sha = repo.git.resolve(ctx.params["ref"])
    if sha is None:
        raise errors.validation(message=f"No commit found for SHA: {ctx.params['ref']}")
    name, status = ctx.query.get("check_name"), ctx.query.get("status")
    app_id = ctx.query.get("app_id")
    with ctx.state.lock:
        runs = [
            r
            for r in ctx.state.check_runs.values()
            if r.repo is repo
            and r.head_sha == sha
            and (not name or r.name == name)
            and (not status or r.status == status)
            and (not app_id or str(r.app.id) == app_id)
        ]
        if ctx.query.get("filter", "latest") == "latest":
            latest: dict[tuple, CheckRun] = {}
            for r in sorted(runs, key=lambda r: r.id):
                latest[(r.app.id, r.name)] = r
            runs = list(latest.values())
        runs.sort(key=lambda r: r.id, reverse=True)
        page, headers = ctx.paginate(runs)
        return Reply(
            200, {"total_count": len(runs), "check_runs": [ctx.views.check_run(r, ctx.snap) for r in page]}, headers
        )
