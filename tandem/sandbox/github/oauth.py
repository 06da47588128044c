"""A GitHub App's user authorization (the OAuth web flow), on the web origin.

* ``GET /login/oauth/authorize?client_id=&redirect_uri=&state=``: GitHub asks the signed-in
  person to authorize the app. The emulator has no signed-in person, so the page lists the users
  and a test picks one (a button per login, ``POST`` back to the same path).
* ``POST /login/oauth/authorize``: 302 to ``redirect_uri?code=…&state=…``.
* ``POST /login/oauth/access_token`` (``client_id``, ``client_secret``, ``code``): a user access
  token (``ghu_…``), as JSON with ``Accept: application/json``, else form-encoded (GitHub's
  default). A code works once, for ten minutes; GitHub answers a bad one 200 with ``error``.
* ``GET /user`` with that token: the user, as ``users/get-authenticated`` shows it.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from .auth import classify
from .core import Core, Request, Response

CODE_LIFETIME = 600


@dataclass
class _Grant:
    client_id: str
    login: str
    redirect_uri: str
    expires_at: float


class OAuth:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._codes: dict[str, _Grant] = {}
        self.user_tokens: dict[str, str] = {}  # token -> login

    def handle(self, core: Core, req: Request) -> Response | None:
        if req.path == "/login/oauth/authorize" and req.method == "GET":
            return self._authorize_page(core, dict(parse_qsl(req.query_string)))
        if req.path == "/login/oauth/authorize" and req.method == "POST":
            return self._grant(core, dict(parse_qsl(req.body.decode())))
        if req.path == "/login/oauth/access_token" and req.method == "POST":
            return self._access_token(core, req)
        if req.path == "/user" and req.method == "GET":
            return self._user(core, req)
        return None

    @staticmethod
    def _app(core: Core, client_id: str):
        return next((app for app in core.state.apps.values() if app.client_id == client_id), None)

    def _authorize_page(self, core: Core, query: dict) -> Response:
        if self._app(core, query.get("client_id", "")) is None or not query.get("redirect_uri"):
            return _html(404, "<h1>Not Found</h1><p>No app with this client_id, or no redirect_uri.</p>")
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(query.get(name, ""))}">'
            for name in ("client_id", "redirect_uri", "state")
        )
        users = sorted(acc.login for acc in core.state.accounts.values() if acc.type == "User")
        buttons = "".join(
            f'<button type="submit" name="login" value="{html.escape(login)}" id="authorize-{html.escape(login)}">'
            f"Authorize as {html.escape(login)}</button>"
            for login in users
        )
        return _html(200, f'<h1>Authorize application</h1><form method="post">{hidden}{buttons}</form>')

    def _grant(self, core: Core, form: dict) -> Response:
        app, login = self._app(core, form.get("client_id", "")), form.get("login", "")
        if app is None or core.state.account(login) is None or not form.get("redirect_uri"):
            return _html(422, "<h1>Unprocessable</h1>")
        code = secrets.token_hex(10)
        with self._lock:
            self._codes[code] = _Grant(app.client_id, login, form["redirect_uri"], time.time() + CODE_LIFETIME)
        separator = "&" if "?" in form["redirect_uri"] else "?"
        location = form["redirect_uri"] + separator + urlencode({"code": code, "state": form.get("state", "")})
        return Response(302, {"location": location, "content-type": "text/html; charset=utf-8"}, b"")

    def _access_token(self, core: Core, req: Request) -> Response:
        if "json" in req.headers.get("content-type", ""):
            form = json.loads(req.body or b"{}")
        else:
            form = dict(parse_qsl(req.body.decode()))
        answer = self._trade(core, form)
        if "json" in req.headers.get("accept", ""):
            return Response(200, {"content-type": "application/json; charset=utf-8"}, json.dumps(answer).encode())
        return Response(200, {"content-type": "application/x-www-form-urlencoded"}, urlencode(answer).encode())

    def _trade(self, core: Core, form: dict) -> dict:
        app = self._app(core, str(form.get("client_id", "")))
        if app is None or not secrets.compare_digest(str(form.get("client_secret", "")), app.client_secret):
            # The code is not spent: only its own client can spend it.
            return {
                "error": "incorrect_client_credentials",
                "error_description": "The client_id and/or client_secret passed are incorrect.",
            }
        with self._lock:
            grant = self._codes.pop(str(form.get("code", "")), None)
        if grant is None or grant.client_id != app.client_id or grant.expires_at < time.time():
            return {"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}
        token = "ghu_" + secrets.token_hex(18)
        with self._lock:
            self.user_tokens[token] = grant.login
        return {"access_token": token, "token_type": "bearer", "scope": ""}

    def _user(self, core: Core, req: Request) -> Response:
        _, credential = classify(req.headers.get("authorization"))
        login = self.user_tokens.get(credential or "")
        if login is None:
            body = {
                "message": "Requires authentication",
                "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user",
            }
            return Response(401, {"content-type": "application/json; charset=utf-8"}, json.dumps(body).encode())
        user = core.views.user(core.state.account(login))
        return Response(200, {"content-type": "application/json; charset=utf-8"}, json.dumps(user).encode())


def _html(status: int, body: str) -> Response:
    page = f"<!doctype html><html><head><title>Authorize · GitHub</title></head><body>{body}</body></html>"
    return Response(status, {"content-type": "text/html; charset=utf-8"}, page.encode())
