"""The reference model runner (`tandem runner`): answers each round awaiting outputs by running a
command-line coding agent once per model, and hands Tandem both answers.

It needs nothing but Tandem's HTTP API and a token with the `runner` scope. For each model of a
round it builds that model's current code in a temporary folder (the task's base from
GET /api/tasks/{id}/base.tar, then the model's cumulative patch from
GET /api/tasks/{id}/rounds/{n}/models/{model}/patch), runs the command there (an argument list,
never a shell) with TANDEM_MODEL, TANDEM_TASK, TANDEM_ROUND and TANDEM_PROMPT set and the
conversation as JSON on stdin, and takes `git diff --binary` of what the command changed as that
model's output. Both outputs go to POST /api/tasks/{id}/rounds/{n}/outputs; a model it could not
answer for goes to .../failures with the reason, and the round is left for the next pass.

It finds rounds by polling GET /api/rounds?status=awaiting_outputs, or by listening for Tandem's
outgoing webhooks (tandem.domain.runner_events), whose signature it checks before believing a word.
"""

from __future__ import annotations

import io
import json
import logging
import os
import queue as queues
import shlex
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx

from tandem.domain.runner_events import EVENT_HEADER, SIGNATURE_HEADER, RunnerEvent, signature_matches

log = logging.getLogger("cli.reference_runner")

# What the command must not inherit: the runner's own credentials.
PRIVATE_ENV = ("TANDEM_RUNNER_TOKEN", "TANDEM_RUNNER_SECRET")
MAX_EVENT_BYTES = 1024 * 1024
_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "tandem-runner",
    "GIT_AUTHOR_EMAIL": "runner@tandem.invalid",
    "GIT_COMMITTER_NAME": "tandem-runner",
    "GIT_COMMITTER_EMAIL": "runner@tandem.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


class RunnerFailure(Exception):
    """This model could not be answered for; the message is the reason reported to Tandem."""


class TandemClient:
    """The runner side of the protocol, over HTTP with a bearer token."""

    def __init__(self, url: str, token: str, *, timeout: float = 60.0):
        self.http = httpx.Client(
            base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def _get(self, path: str, **params) -> httpx.Response:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response

    def awaiting_rounds(self, *, limit: int = 50) -> Iterator[dict]:
        """Every round awaiting outputs that this token's team may answer, page after page."""
        after = None
        while True:
            params = {"status": "awaiting_outputs", "limit": limit} | ({"after": after} if after else {})
            page = self._get("/api/rounds", **params).json()
            yield from page["rounds"]
            after = page.get("next")
            if not after:
                return

    def round(self, task_id: int, number: int) -> dict:
        return self._get(f"/api/tasks/{task_id}/rounds/{number}").json()

    def base_archive(self, task_id: int) -> bytes:
        return self._get(f"/api/tasks/{task_id}/base.tar").content

    def patch(self, task_id: int, number: int, model: str) -> str:
        return self._get(f"/api/tasks/{task_id}/rounds/{number}/models/{quote(model, safe='')}/patch").text

    def submit(self, task_id: int, number: int, outputs: list[dict]) -> dict:
        response = self.http.post(f"/api/tasks/{task_id}/rounds/{number}/outputs", json={"outputs": outputs})
        if response.status_code >= 400:
            raise RunnerFailure(f"Tandem refused the outputs ({response.status_code}): {_message(response)}")
        return response.json()

    def report_failure(self, task_id: int, number: int, model: str | None, reason: str) -> None:
        response = self.http.post(
            f"/api/tasks/{task_id}/rounds/{number}/failures", json={"model": model, "reason": reason}
        )
        if response.status_code >= 400:
            log.error(
                "task %s round %s: Tandem refused the failure report (%s): %s",
                task_id,
                number,
                response.status_code,
                _message(response),
            )


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    problems = "; ".join(f"{e.get('field')}: {e.get('problem')}" for e in body.get("errors") or [])
    return f"{body.get('message')}" + (f" ({problems})" if problems else "")


def _git(worktree: Path, *args: str, input: bytes | None = None) -> bytes:
    result = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", *args],
        cwd=worktree,
        input=input,
        capture_output=True,
        env=os.environ | _GIT_IDENTITY,
        check=False,
    )
    if result.returncode != 0:
        raise RunnerFailure(f"git {args[0]}: {result.stderr.decode(errors='replace').strip()[:500]}")
    return result.stdout


@dataclass
class Runner:
    client: TandemClient
    command: list[str]
    timeout: float
    # A round that failed is polled again only after this long (not a failure report every poll).
    retry_failed_after: float = 600.0
    failed_at: dict[tuple[int, int], float] = field(default_factory=dict)

    def answer(self, item: dict) -> str:
        """Answer one round: "accepted", "duplicate", or "failed" (reported to Tandem)."""
        task_id, number = item["task_id"], item["round"]
        outputs, failed = [], False
        with tempfile.TemporaryDirectory(prefix=f"tandem-{task_id}-{number}-") as scratch:
            base = self.client.base_archive(task_id)
            for index, model in enumerate(item["models"]):
                try:
                    patch = self._answer_for(item, model, base, Path(scratch) / str(index))
                    outputs.append({"model": model, "patch": patch})
                    log.info("task %s round %s: %s changed %d bytes of diff", task_id, number, model, len(patch))
                except RunnerFailure as exc:
                    failed = True
                    log.error("task %s round %s: %s failed: %s", task_id, number, model, exc)
                    self.client.report_failure(task_id, number, model, str(exc))
        if failed:
            return "failed"
        try:
            status = self.client.submit(task_id, number, outputs).get("status", "accepted")
        except RunnerFailure as exc:
            log.error("task %s round %s: %s", task_id, number, exc)
            self.client.report_failure(task_id, number, None, str(exc))
            return "failed"
        log.info("task %s round %s: outputs %s", task_id, number, status)
        return status

    def _answer_for(self, item: dict, model: str, base: bytes, worktree: Path) -> str:
        """Build the model's current code, run the command there, and return what it changed."""
        worktree.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(base)) as archive:
            archive.extractall(worktree, filter="data")
        _git(worktree, "init", "-q")
        _git(worktree, "add", "-A", "--force")  # every file of the base, even those it ignores
        _git(worktree, "commit", "-q", "--allow-empty", "-m", "base")
        current = self.client.patch(item["task_id"], item["round"], model)
        if current.strip():
            _git(worktree, "apply", "--binary", "--index", "-", input=current.encode())
            _git(worktree, "commit", "-q", "-m", "current head")
        self._run(item, model, worktree)
        _git(worktree, "add", "-A")
        patch = _git(worktree, "diff", "--binary", "--cached", "HEAD").decode()
        if not patch.strip():
            raise RunnerFailure("the command changed no file")
        return patch

    def _run(self, item: dict, model: str, worktree: Path) -> None:
        conversation = item["conversation"]
        env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV} | {
            "TANDEM_MODEL": model,
            "TANDEM_TASK": str(item["task_id"]),
            "TANDEM_ROUND": str(item["round"]),
            "TANDEM_PROMPT": conversation[-1]["prompt"] if conversation else "",
        }
        try:
            # In its own session, so that stopping it stops whatever it started too.
            process = subprocess.Popen(
                self.command,
                cwd=worktree,
                env=env,
                start_new_session=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise RunnerFailure(f"the command could not start: {exc.strerror}") from None
        with process:
            try:
                _, stderr = process.communicate(json.dumps(conversation).encode(), timeout=self.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                raise RunnerFailure(f"the command ran over {self.timeout:g} s and was stopped") from None
        if process.returncode != 0:
            tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
            raise RunnerFailure(f"the command exited with {process.returncode}: {' / '.join(tail) or 'no output'}")

    def poll_once(self) -> dict[str, str]:
        """Answer every round awaiting outputs; returns "task/round" -> outcome. Tandem out of
        reach is logged and left to the next pass."""
        outcomes: dict[str, str] = {}
        try:
            for item in self.client.awaiting_rounds():
                failed = self.failed_at.get((item["task_id"], item["round"]))
                if failed is None or time.monotonic() - failed >= self.retry_failed_after:
                    outcomes[f"{item['task_id']}/{item['round']}"] = self._answer_logged(item)
        except httpx.HTTPError as exc:
            log.error("cannot list the rounds awaiting outputs: %s", _describe(exc))
        return outcomes

    def answer_announced(self, task_id: int, number: int) -> str | None:
        """A round a webhook announced: answered if it still awaits outputs."""
        try:
            item = self.client.round(task_id, number)
        except httpx.HTTPError as exc:
            log.error("task %s round %s: cannot read the round: %s", task_id, number, _describe(exc))
            return None
        return self._answer_logged(item) if item["status"] == "awaiting_outputs" else None

    def _answer_logged(self, item: dict) -> str:
        try:
            outcome = self.answer(item)
        except httpx.HTTPError as exc:
            log.error("task %s round %s: %s", item["task_id"], item["round"], _describe(exc))
            outcome = "failed"
        key = (item["task_id"], item["round"])
        if outcome == "failed":
            self.failed_at[key] = time.monotonic()
        else:
            self.failed_at.pop(key, None)
        return outcome


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return (
            f"{exc.request.method} {exc.request.url.path} answered {exc.response.status_code}: {_message(exc.response)}"
        )
    return f"{type(exc).__name__}: {exc}"


def parse_command(text: str) -> list[str]:
    command = shlex.split(text)
    if not command:
        raise ValueError("the command is empty")
    return command


class EventListener:
    """Tandem's outgoing webhooks, verified: a round awaiting outputs is handed to `rounds`."""

    def __init__(self, host: str, port: int, secret: bytes):
        self.rounds: queues.Queue[tuple[int, int]] = queues.Queue()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                listener.receive(self)

            def log_message(self, format: str, *args) -> None:
                log.debug("listener: " + format, *args)

        self.secret, self.host = secret, host
        self.server = ThreadingHTTPServer((host, port), Handler)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.server.server_port}"  # the port bound, when asked for 0

    def receive(self, request: BaseHTTPRequestHandler) -> None:
        length = request.headers.get("Content-Length") or ""
        if not length.isdigit():  # no chunked bodies: Tandem always says how long its body is
            return _answer(request, 411, "a Content-Length is required")
        if int(length) > MAX_EVENT_BYTES:
            return _answer(request, 413, "too large")
        body = request.rfile.read(int(length))
        if not signature_matches(self.secret, body, request.headers.get(SIGNATURE_HEADER)):
            log.warning("listener: refused a delivery with a missing or wrong %s", SIGNATURE_HEADER)
            return _answer(request, 401, "bad signature")
        if request.headers.get(EVENT_HEADER) == RunnerEvent.ROUND_AWAITING_OUTPUTS:
            try:
                event = json.loads(body)
                self.rounds.put((int(event["task_id"]), int(event["round"])))
            except (ValueError, TypeError, KeyError):
                return _answer(request, 400, "not a round event")
        _answer(request, 202, "accepted")

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, name="tandem-runner-listener", daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _answer(request: BaseHTTPRequestHandler, status: int, text: str) -> None:
    body = json.dumps({"message": text}).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)
