"""People's actions on the sandbox's GitHub from another process (`tandem sandbox comment ...`).

The sandbox's GitHub keeps its state in the `tandem sandbox` process, so a small loopback server
there takes actions as JSON and performs them as the named user, exactly as github.com would
(webhooks included). Its bearer token lives in the sandbox directory, readable by its owner only:
other local users cannot act as raters. Tokens travel in a header, never in a URL or argv."""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tandem.infra.errors import TandemError
from tandem.sandbox.github import ApiError, GitHubEmulator

TOKEN_FILE = "control.token"
REVIEW_EVENTS = {"approve": "APPROVE", "request-changes": "REQUEST_CHANGES", "comment": "COMMENT"}
MAX_BODY = 8 * 1024 * 1024


def perform(emu: GitHubEmulator, action: dict[str, Any]) -> dict[str, Any]:
    """One person's action on a pull request; what GitHub would answer."""
    login = str(action["login"])
    if emu.core.state.account(login) is None:
        raise ValueError(f"no user {login!r} on the sandbox's GitHub")
    user = emu.as_user(login)
    repo, number, kind = str(action["repo"]), int(action["number"]), action["action"]
    if kind == "comment":
        done = user.comment(repo, number, str(action["body"]))
    elif kind == "review":
        done = user.submit_review(repo, number, str(action.get("body") or ""), REVIEW_EVENTS[action["event"]])
    elif kind == "line-comment":
        done = user.review_comment(
            repo, number, path=str(action["path"]), line=int(action["line"]), body=str(action["body"])
        )
    elif kind == "push":
        branch = emu.pull(repo, number).pull_request.head_ref
        sha = user.push(repo, dict(action["files"]), branch, str(action.get("message") or "Update files"))
        return {"sha": sha, "branch": branch}
    else:
        raise ValueError(f"unknown action {kind!r}")
    return {"html_url": done.get("html_url")}


class ControlServer:
    def __init__(self, emu: GitHubEmulator, directory: Path):
        token = secrets.token_urlsafe(32)
        token_file = directory / TOKEN_FILE
        token_file.touch(mode=0o600)
        token_file.write_text(token)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(emu, token))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(emu: GitHubEmulator, token: str) -> type[BaseHTTPRequestHandler]:
    expected = f"Bearer {token}".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            given = self.headers.get("Authorization", "").encode()
            if self.path != "/actions" or not hmac.compare_digest(given, expected):
                return self._answer(404 if self.path != "/actions" else 401, {"message": "Not Found"})
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._answer(413, {"message": "too large"})
            try:
                self._answer(200, perform(emu, json.loads(self.rfile.read(length))))
            except ApiError as exc:
                self._answer(422, {"message": f"GitHub answered {exc.status}: {exc.message}"})
            except (KeyError, ValueError, TypeError) as exc:
                self._answer(400, {"message": str(exc)})

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:  # actions are reported by the client, not here
            pass

    return Handler


def send(control_url: str, directory: Path, action: dict[str, Any]) -> dict[str, Any]:
    """Ask a running sandbox to perform `action`."""
    token = (directory / TOKEN_FILE).read_text().strip()
    try:
        answer = httpx.post(
            f"{control_url}/actions", json=action, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
    except httpx.HTTPError as exc:
        raise TandemError(
            f"the sandbox at {directory} does not answer ({type(exc).__name__}): is it running?"
        ) from None
    if answer.status_code != 200:
        raise TandemError(answer.json().get("message", f"HTTP {answer.status_code}"))
    return answer.json()
