"""Rounds end to end, with real `tandem serve`, `tandem worker` and `tandem runner` processes
against the GitHub emulator: a task submitted with models only gets round 1 from the runner's
example agent, a rater's /followup gets round 2, and the votes and the export follow the rounds.
Once through the pull protocol, once through the outgoing webhooks."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tandem.domain import export
from tandem.infra import tokens
from tandem.infra.models import Judgment, Round, RoundSide, Task
from tandem.infra.tokens import Scope
from tests.conftest import small_task, tandem_env

TANDEM = str(Path(sys.executable).with_name("tandem"))
AGENT = f"{sys.executable} {Path(__file__).parents[1] / 'examples' / 'agents' / 'echo_agent.py'}"
REPO = "evals-org/mlflow"
MODELS = ["model-x-2026-10", "model-y-2026-09"]
SECRET = "runner-webhook-secret"
# Only a broken flow gets near it: each step takes a few seconds.
PATIENCE = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, check: Callable[[], object], processes: list[subprocess.Popen]) -> object:
    """Until check() is truthy; a process that died (or the patience running out) fails the test."""
    deadline = time.monotonic() + PATIENCE
    while not (found := check()):
        dead = [p.args[1] for p in processes if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise AssertionError(f"{what}: never happened" + (f" ({', '.join(dead)} exited)" if dead else ""))
        threading.Event().wait(0.2)
    return found


class Tandem:
    """Tandem's processes, configured for this test's GitHub, database and Redis."""

    def __init__(self, services, tmp_path: Path, push: bool):
        self.services, self.tmp_path, self.push = services, tmp_path, push
        self.port, self.runner_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []
        self.env = tandem_env(services, tmp_path) | {
            "TANDEM_JOB_RETRY_INTERVALS": "[1, 1, 1]",
            "TANDEM_WRITE_SPACING_SECONDS": "0",
            "TANDEM_LOG_LEVEL": "WARNING",
        }
        if push:
            self.env |= {"TANDEM_RUNNER_URL": f"http://127.0.0.1:{self.runner_port}/", "TANDEM_RUNNER_SECRET": SECRET}

    def start(self, *args: str, env: dict | None = None) -> subprocess.Popen:
        log = open(self.tmp_path / f"{args[0]}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [TANDEM, *args], cwd=self.tmp_path, env=self.env | (env or {}), stdout=log, stderr=log
        )
        self.processes.append(process)
        return process

    def token(self, name: str, scopes: list[Scope]) -> str:
        with self.services.storage.transaction() as session:
            return tokens.create_token(session, name, team="lab", scopes=scopes)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # Never left running: a stray worker would take the next test's jobs on this Redis.
                process.kill()
                process.wait()
        for name in ("serve", "worker", "runner"):
            log = self.tmp_path / f"{name}.log"
            if log.exists():
                print(f"--- {name} ---\n{log.read_text()[-4000:]}")


@pytest.fixture(params=["pull", "push"])
def tandem(request, github, services, tmp_path) -> Iterator[Tandem]:
    running = Tandem(services, tmp_path, push=request.param == "push")
    try:
        running.start("serve", "--port", str(running.port))
        wait_for("tandem serve answering", lambda: _healthy(running.url), running.processes)
        github.set_webhook(f"{running.url}/webhooks/github")
        running.start("worker")
        runner = ["runner", "--url", running.url, "--command", AGENT, "--timeout", "60"]
        if running.push:  # only the webhooks can start the agent: the runner polls once an hour
            runner += ["--listen", f"127.0.0.1:{running.runner_port}", "--poll-seconds", "3600"]
        else:
            runner += ["--poll-seconds", "0.5"]
        secrets = {"TANDEM_RUNNER_TOKEN": running.token("lab-runner", [Scope.RUNNER])}
        running.start(*runner, env=secrets | ({"TANDEM_RUNNER_SECRET": SECRET} if running.push else {}))
        if running.push:
            wait_for("the runner listening", lambda: _listening(running.runner_port), running.processes)
        yield running
    finally:
        running.stop()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def file_at(github, sha: str, path: str) -> str:
    git = github.repo(REPO).git
    return git.read_blob(git.entry_at(sha, path).sha).decode()


def sides(services, task_id: int) -> dict[str, dict]:
    """letter -> {"model", "pr", "head"} as recorded."""
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        if task is None or task.pair is None:
            return {}
        return {s.letter: {"model": s.output.model, "pr": s.pr_number, "head": s.head_sha} for s in task.pair.sides}


def status(services, task_id: int) -> str:
    with services.storage.transaction() as session:
        return session.get(Task, task_id).status


def round_one(tandem, github, services, blinding) -> tuple[int, dict[str, dict]]:
    """(1) A task submitted with models only gets round 1 from the runner's example agent, and
    the PRs open: (task id, its sides)."""
    submit = {"Authorization": f"Bearer {tandem.token('lab-submit', [Scope.SUBMIT, Scope.READ])}"}
    blinding.secrets.update(MODELS)
    task = small_task(blinding, models=MODELS)
    del task["outputs"]
    answer = httpx.post(f"{tandem.url}/api/tasks", json=task, headers=submit, timeout=60)
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["id"]
    wait_for("the pair opening", lambda: status(services, task_id) == "open", tandem.processes)
    first = sides(services, task_id)
    for side in first.values():
        notes = file_at(github, side["head"], "NOTES.md")
        assert notes.startswith("# Notes\n\n## Round 1 (1 prompts so far), by agent ")
        assert notes.endswith("\n\nFix the command injection.\n")
    assert file_at(github, first["A"]["head"], "NOTES.md") != file_at(github, first["B"]["head"], "NOTES.md")
    return task_id, first


def test_round_one_comes_from_the_runner(tandem, github, services, blinding):
    task_id, first = round_one(tandem, github, services, blinding)
    assert {side["model"] for side in first.values()} == set(MODELS)
    with services.storage.transaction() as session:
        assert session.get(Task, task_id).submitted_by == "lab-submit"


def test_a_task_from_prompts_alone(tandem, github, services, blinding):
    task_id, first = round_one(tandem, github, services, blinding)

    # (2) A rater votes, then asks for more.
    rater = github.as_user("rater-one")
    rater.comment(REPO, first["A"]["pr"], "/prefer A\nIt records the prompt.")
    wait_for("the round 1 vote", lambda: _votes(services, task_id), tandem.processes)
    rater.comment(REPO, first["B"]["pr"], "/followup Now add a test for the fix.")

    # (3) The runner answers; each PR gets exactly one new commit, the agent's tree.
    def round_two_open() -> dict[str, dict] | None:
        now = sides(services, task_id)
        moved = all(now[letter]["head"] != first[letter]["head"] for letter in "AB")
        return now if moved and status(services, task_id) == "open" else None

    second = wait_for("round 2 on both PRs", round_two_open, tandem.processes)
    git = github.repo(REPO).git
    for letter in "AB":
        assert git.read_commit(second[letter]["head"]).parents == [first[letter]["head"]]
        branch_head = git.ref_sha(f"refs/heads/{_branch(services, task_id, letter)}")
        assert branch_head == second[letter]["head"]
        notes = file_at(github, second[letter]["head"], "NOTES.md")
        before = file_at(github, first[letter]["head"], "NOTES.md")
        assert notes.startswith(before) and notes[len(before) :].startswith(
            "\n## Round 2 (2 prompts so far), by agent "
        )
        assert notes.endswith("\n\nNow add a test for the fix.\n")
        assert [f["filename"] for f in git.diff_files(first[letter]["head"], second[letter]["head"])] == ["NOTES.md"]

    # (4) Round 2's votes record round 2's heads; the export shows both rounds with their prompts.
    rater.comment(REPO, second["B"]["pr"], "/prefer B\nThe test is better.")
    wait_for("the round 2 vote", lambda: len(_votes(services, task_id)) == 2, tandem.processes)
    votes = _votes(services, task_id)
    assert (votes[-1].head_sha_a, votes[-1].head_sha_b) == (second["A"]["head"], second["B"]["head"])
    assert (votes[0].head_sha_a, votes[0].head_sha_b) == (first["A"]["head"], first["B"]["head"])
    out = io.StringIO()
    with services.storage.transaction() as session:
        export.export_judgments(session, out, since=None, repo=REPO)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    judged = [(r["kind"], r["round"], r["round_prompt"], r["verdict"]) for r in rows if r["kind"] == "judgment"]
    assert judged == [
        ("judgment", 1, "Fix the command injection.", "A"),
        ("judgment", 2, "Now add a test for the fix.", "B"),
    ]
    round_two = next(r for r in rows if r["round"] == 2)
    assert (round_two["round_head_sha_a"], round_two["round_head_sha_b"]) == (second["A"]["head"], second["B"]["head"])

    # (5) Each round's sides keep their whole change from the base, as the export's responses.
    with services.storage.transaction() as session:
        changes = {
            (number, letter): (diff, files)
            for number, letter, diff, files in session.execute(
                select(Round.number, RoundSide.letter, RoundSide.diff, RoundSide.files)
                .join(Round, Round.id == RoundSide.round_id)
                .where(Round.task_id == task_id)
            )
        }
    for letter in "AB":
        for number, heads in ((1, first), (2, second)):
            diff, files = changes[(number, letter)]
            assert files == {"NOTES.md": file_at(github, heads[letter]["head"], "NOTES.md")}
            assert f"+## Round {number} " in diff and "+## Round 1 " in diff  # from the base, not the round before


def _votes(services, task_id: int) -> list[Judgment]:
    with services.storage.transaction() as session:
        rows = list(session.scalars(select(Judgment).where(Judgment.task_id == task_id).order_by(Judgment.id)))
        session.expunge_all()
        return rows


def _branch(services, task_id: int, letter: str) -> str:
    with services.storage.transaction() as session:
        return session.get(Task, task_id).pair.side(letter).branch


@pytest.mark.parametrize("tandem", ["push"], indirect=True)
def test_the_runner_refuses_a_forged_or_unsigned_webhook(tandem):
    url = f"http://127.0.0.1:{tandem.runner_port}/"
    body = json.dumps({"event": "round.awaiting_outputs", "task_id": 1, "round": 1}).encode()
    headers = {"X-Tandem-Event": "round.awaiting_outputs", "Content-Type": "application/json"}
    assert httpx.post(url, content=body, headers=headers).status_code == 401
    forged = headers | {"X-Tandem-Signature-256": "sha256=" + "0" * 64}
    assert httpx.post(url, content=body, headers=forged).status_code == 401
