"""The github.com side of the single origin (not the REST API).

* ``POST /settings/apps/new`` and ``POST /organizations/{org}/settings/apps/new``
  with form fields ``manifest`` (JSON) and ``state``: the GitHub App manifest
  flow. GitHub would show a confirmation page; the emulator registers the app
  at once and answers 302 to ``redirect_url?code=...&state=...``.
* ``GET /_raw/{owner}/{repo}/{ref}/{path}``: a file's bytes (``download_url``).
* ``POST /_emulator/post-receive``: called by the bare repositories'
  post-receive hooks after a ``git push``.
* Git over HTTP at ``/{owner}/{repo}.git`` (``git_http``).
* ``GET`` of an ``html_url`` (``/{owner}/{repo}/pull/{n}`` and so on): a tiny
  HTML page, so links in comments can be followed in tests.

``handle`` returns None for anything else, which then goes to the REST API.
"""

from __future__ import annotations

import html
import json
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from . import git_http
from .core import Core, Request, Response

# First path segments that belong to the REST API (and GraphQL's) on this origin.
_API_ROOTS = {
    "app",
    "app-manifests",
    "graphql",
    "installation",
    "rate_limit",
    "orgs",
    "repos",
    "users",
    "organizations",
}


def handle(core: Core, req: Request) -> Response | None:
    parts = [unquote(p) for p in req.path.strip("/").split("/")] if req.path.strip("/") else []
    if (answer := core.oauth.handle(core, req)) is not None:
        return answer
    if req.path == "/_emulator/post-receive" and req.method == "POST":
        report = json.loads(req.body or b"{}")
        core.domain.handle_push_report(report.get("git_dir", ""), report.get("updates", []), report.get("pusher"))
        return Response(204)
    if (
        req.method == "POST"
        and parts[-3:] == ["settings", "apps", "new"]
        and (len(parts) == 3 or (len(parts) == 5 and parts[0] == "organizations"))
    ):
        return _manifest_form(core, req, org=parts[1] if len(parts) == 5 else None)
    if req.method == "GET" and parts[:1] == ["_raw"] and len(parts) >= 5:
        return _raw_file(core, parts[1], parts[2], parts[3], "/".join(parts[4:]))
    if parts and parts[0] not in _API_ROOTS and (answer := git_http.handle(core, req, parts)) is not None:
        return answer
    if req.method == "GET" and parts and parts[0] not in _API_ROOTS:
        return _page(core, parts)
    return None


def _text(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status, {"content-type": content_type}, text.encode())


def _manifest_form(core: Core, req: Request, org: str | None) -> Response:
    ctype = req.headers.get("content-type", "")
    if "json" in ctype:
        form = json.loads(req.body or b"{}")
    else:
        form = dict(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True))
    try:
        manifest = json.loads(form.get("manifest") or "")
    except ValueError:
        return _text(422, "Invalid GitHub App configuration: the manifest is not JSON")
    if not isinstance(manifest, dict):
        return _text(422, "Invalid GitHub App configuration: the manifest must be an object")
    try:
        code, app = core.manifests.create_code(manifest, org=org)
    except ValueError as exc:
        return _text(422, f"Invalid GitHub App configuration: {exc}")
    redirect = manifest.get("redirect_url") or f"{core.base_url}/settings/apps/{app.slug}"
    query = {"code": code}
    if form.get("state") is not None:
        query["state"] = form["state"]
    parts = urlsplit(redirect)
    joined = f"{parts.query}&{urlencode(query)}" if parts.query else urlencode(query)
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))
    return Response(
        302,
        {"location": location, "content-type": "text/html; charset=utf-8"},
        f'<html><body>You are being <a href="{html.escape(location)}">redirected</a>.</body></html>'.encode(),
    )


def _raw_file(core: Core, owner: str, name: str, ref: str, path: str) -> Response:
    repo = core.state.repo(owner, name)
    if repo is None or repo.private:
        return _text(404, "404: Not Found")
    commit = repo.git.resolve(ref)
    entry = repo.git.entry_at(commit, path) if commit else None
    if entry is None or entry.type != "blob":
        return _text(404, "404: Not Found")
    return Response(200, {"content-type": "text/plain; charset=utf-8"}, repo.git.read_blob(entry.sha))


def _page(core: Core, parts: list[str]) -> Response:
    state = core.state
    title = None
    if len(parts) == 1:
        acc = state.account(parts[0])
        title = acc.login if acc else None
    elif len(parts) == 2 and parts[0] == "apps":
        app = state.apps_by_slug.get(parts[1])
        title = app.name if app else None
    elif len(parts) >= 2:
        repo = state.repo(parts[0], parts[1].removesuffix(".git"))
        if repo is not None and not repo.private:
            title = repo.full_name
            if len(parts) >= 4 and parts[2] in ("pull", "issues") and parts[3].isdigit():
                issue = repo.issues.get(int(parts[3]))
                if issue is None or (parts[2] == "pull") != (issue.pr is not None):
                    title = None
                else:
                    title = (
                        f"{issue.title} · {'Pull Request' if issue.pr else 'Issue'} #{issue.number} · {repo.full_name}"
                    )
    if not title:
        return _text(404, "<html><title>Page not found · GitHub</title></html>", "text/html; charset=utf-8")
    return _text(
        200,
        f"<html><head><title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1></body></html>",
        "text/html; charset=utf-8",
    )
