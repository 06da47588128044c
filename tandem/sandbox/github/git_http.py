"""Git over HTTP at ``{url}/{owner}/{repo}.git``, where github.com serves it, through ``git http-backend``.

Credentials as GitHub takes them: HTTP Basic with an installation token as the password (any user
name; ``x-access-token`` by custom). Anyone may fetch a public repository; a private one, and every
push, needs a token whose installation holds the repository, and a push also ``contents: write``.
Refusals answer as GitHub's do: 401 asks for credentials, 403 says who was denied, and a
repository the caller may not see is not found. A push names the app's bot as its pusher to the
post-receive hook, as the API's writes name it. This is not REST: none of it is in ``emu.requests``.
"""

from __future__ import annotations

import base64
import binascii
import subprocess
from urllib.parse import parse_qs

from .auth import ANONYMOUS, AuthInfo
from .core import Core, Request, Response
from .errors import ApiError
from .gitrepo import _ENV as GIT_ENV

_SERVICES = {"git-upload-pack", "git-receive-pack"}


def handle(core: Core, req: Request, parts: list[str]) -> Response | None:
    """The answer to a git request (parts: the path's unquoted segments), or None if it is none."""
    if len(parts) < 3 or not parts[1].endswith(".git"):
        return None
    tail = parts[2:]
    if req.method == "GET" and tail == ["info", "refs"]:
        service = parse_qs(req.query_string).get("service", [""])[0]
    elif req.method == "POST" and len(tail) == 1:
        service = tail[0]
    else:
        return None
    if service not in _SERVICES:
        return _text(403, "Smart HTTP only: give ?service=git-upload-pack or git-receive-pack\n")
    repo = core.state.repo(parts[0], parts[1].removesuffix(".git"))
    try:
        auth = _caller(core, req.headers.get("authorization"))
    except ApiError:
        return _ask_for_credentials()
    if repo is None or repo.deleted or not auth.can_read(repo):
        return _ask_for_credentials() if auth.kind == "none" else _text(404, "Repository not found.\n")
    push = service == "git-receive-pack"
    if push and auth.kind == "none":
        return _ask_for_credentials()
    if push and not (auth.covers(repo) and auth.permission("contents") == "write"):
        return _text(403, f"Permission to {repo.full_name}.git denied to {auth.app_required.bot_login}.\n")
    env = {
        **GIT_ENV,
        "GIT_PROJECT_ROOT": str(repo.git_dir.resolve()),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": "/" + "/".join(tail),
        "REQUEST_METHOD": req.method,
        "QUERY_STRING": req.query_string,
        "CONTENT_TYPE": req.headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(req.body)),
        "HTTP_CONTENT_ENCODING": req.headers.get("content-encoding", ""),
        "HTTP_GIT_PROTOCOL": req.headers.get("git-protocol", ""),
    }
    if push:  # http-backend serves receive-pack only to a known user
        env["REMOTE_USER"] = env["GITHUB_EMULATOR_PUSHER"] = auth.app_required.bot_login
    result = subprocess.run(["git", "http-backend"], input=req.body, env=env, capture_output=True, check=False)
    return _cgi_response(result.stdout)


def _caller(core: Core, header: str | None) -> AuthInfo:
    """Who the Basic credentials are (ApiError 401 if they are not valid)."""
    scheme, _, encoded = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return ANONYMOUS
    try:
        _user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(401) from None
    if not password:
        raise ApiError(401)
    auth = core.auth.authenticate(f"token {password}")
    if auth.kind != "installation":  # a JWT is no git credential
        raise ApiError(401)
    return auth


def _ask_for_credentials() -> Response:
    return Response(401, {"www-authenticate": 'Basic realm="GitHub"', "content-type": "text/plain; charset=utf-8"}, b"")


def _text(status: int, text: str) -> Response:
    return Response(status, {"content-type": "text/plain; charset=utf-8"}, text.encode())


def _cgi_response(output: bytes) -> Response:
    head, _, body = output.partition(b"\r\n\r\n") if b"\r\n\r\n" in output else output.partition(b"\n\n")
    status, headers = 200, {}
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
        elif name:
            headers[name.strip().lower()] = value.strip()
    return Response(status, headers, body)
