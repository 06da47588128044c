"""The runner protocol over HTTP (app.rounds_api) and the reference runner against it: real
server, real GitHub emulator, real git, the example agent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from cli.reference_runner import Runner, TandemClient
from tandem.domain import tasks
from tandem.domain.task_spec import parse_task
from tandem.infra import tokens
from tandem.infra.models import Task
from tandem.infra.tokens import Scope
from tests.conftest import run_jobs, small_task, tandem_env
from tests.servers import LiveServer

REPO = "evals-org/mlflow"
MODELS = ["model-x-2026-10", "model-y-2026-09"]
AGENT = [sys.executable, str(Path(__file__).parents[1] / "examples" / "agents" / "echo_agent.py")]


def models_only_task(services, blinding, team="lab", **overrides) -> int:
    data = small_task(blinding, models=MODELS, **overrides)
    del data["outputs"]
    blinding.secrets.update(MODELS)
    return tasks.submit(services, parse_task(data), "test", team=team)


def token(services, team="lab", scopes=(Scope.RUNNER,), name=None) -> str:
    with services.storage.transaction() as session:
        return tokens.create_token(session, name or f"{team}-{'-'.join(scopes)}", team=team, scopes=list(scopes))


@pytest.fixture
def api(github, services):
    """Tandem's web app on a loopback port, and an HTTP client with a runner token of team lab."""
    from app.main import create_app

    with LiveServer(create_app(services)) as server:
        headers = {"Authorization": f"Bearer {token(services)}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            client.server_url = server.url
            yield client


def test_a_round_awaiting_outputs_is_listed_keyed_by_model(api, services, blinding):
    task_id = models_only_task(services, blinding)
    page = api.get("/api/rounds", params={"status": "awaiting_outputs"})
    assert page.status_code == 200, page.text
    [item] = page.json()["rounds"]
    assert page.json()["next"] is None
    assert (item["task_id"], item["repo"], item["round"], item["status"]) == (task_id, REPO, 1, "awaiting_outputs")
    assert item["models"] == MODELS and item["heads"] == {model: None for model in MODELS}
    assert [(t["round"], t["prompt"]) for t in item["conversation"]] == [(1, "Fix the command injection.")]
    assert "A" not in str(sorted(item)) and "letter" not in page.text and "side" not in page.text
    assert api.get(f"/api/tasks/{task_id}/rounds/1").json() == item
    assert api.get(item["patch_urls"][MODELS[0]]).text == ""  # nothing of the model's yet
    assert api.get(f"/api/tasks/{task_id}/rounds/1/models/model-z/patch").status_code == 404


def test_the_base_archive_is_the_mirrors_tree(api, services, blinding, tmp_path):
    task_id = models_only_task(services, blinding)
    response = api.get(f"/api/tasks/{task_id}/base.tar")
    assert response.headers["content-type"] == "application/x-tar"
    (tmp_path / "base.tar").write_bytes(response.content)
    listing = subprocess.run(["tar", "-tf", str(tmp_path / "base.tar")], capture_output=True, text=True, check=True)
    assert {"README.md", "src/app.py", ".github/tandem.yml"} <= set(listing.stdout.split())


def test_pages_follow_the_cursor(api, services, blinding):
    ids = [models_only_task(services, blinding) for _ in range(3)]
    seen, after = [], None
    while True:
        page = api.get(
            "/api/rounds", params={"status": "awaiting_outputs", "limit": 2} | ({"after": after} if after else {})
        )
        seen += [item["task_id"] for item in page.json()["rounds"]]
        after = page.json()["next"]
        if after is None:
            break
    assert seen == ids


def test_a_token_sees_only_its_teams_rounds_and_needs_the_runner_scope(api, services, blinding):
    task_id = models_only_task(services, blinding, team="other-lab")
    assert api.get("/api/rounds", params={"status": "awaiting_outputs"}).json()["rounds"] == []
    for path in (
        f"/api/tasks/{task_id}/rounds/1",
        f"/api/tasks/{task_id}/base.tar",
        f"/api/tasks/{task_id}/rounds/1/models/{MODELS[0]}/patch",
    ):
        assert api.get(path).status_code == 404, path
    refused = api.post(f"/api/tasks/{task_id}/rounds/1/outputs", json={"outputs": []})
    assert refused.status_code == 404
    reader = {"Authorization": f"Bearer {token(services, team='other-lab', scopes=(Scope.READ,))}"}
    answer = api.get("/api/rounds", params={"status": "awaiting_outputs"}, headers=reader)
    assert answer.status_code == 403 and "runner scope" in answer.json()["message"]
    assert api.get("/api/rounds", params={"status": "open"}).status_code == 422
    assert api.get("/api/rounds", headers={"Authorization": "Bearer nope"}).status_code == 401


def outputs(x: str, y: str) -> dict:
    return {
        "outputs": [{"model": MODELS[0], "files": {"src/app.py": x}}, {"model": MODELS[1], "files": {"src/app.py": y}}]
    }


def test_submitting_is_idempotent_and_a_different_second_submission_conflicts(api, services, blinding):
    task_id = models_only_task(services, blinding)
    url = f"/api/tasks/{task_id}/rounds/1/outputs"
    first = api.post(url, json=outputs("X = 1\n", "Y = 2\n"))
    assert (first.status_code, first.json()["status"]) == (202, "accepted")
    again = api.post(url, json=outputs("X = 1\n", "Y = 2\n"))
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    other = api.post(url, json=outputs("X = 3\n", "Y = 4\n"))
    assert other.status_code == 409 and other.json()["errors"] == []
    assert api.get("/api/rounds", params={"status": "awaiting_outputs"}).json()["rounds"] == []


def test_bad_outputs_are_refused_naming_the_field(api, services, blinding):
    task_id = models_only_task(services, blinding)
    url = f"/api/tasks/{task_id}/rounds/1/outputs"
    answer = api.post(url, json={"outputs": [{"model": MODELS[0], "patch": ""}, {"model": MODELS[1]}]})
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["outputs.0", "outputs.1"]
    wrong = api.post(
        url, json={"outputs": [{"model": "model-z", "files": {"a": "1"}}, {"model": MODELS[1], "files": {"a": "2"}}]}
    )
    assert wrong.status_code == 400, wrong.text
    unapplied = api.post(
        url,
        json={
            "outputs": [
                {"model": MODELS[0], "patch": "--- a/src/nope.py\n+++ b/src/nope.py\n@@ -1 +1 @@\n-a\n+b\n"},
                {"model": MODELS[1], "files": {"src/app.py": "Y\n"}},
            ]
        },
    )
    assert unapplied.status_code == 400 and "src/nope.py" in unapplied.text
    assert api.post(url, content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    failure = api.post(
        f"/api/tasks/{task_id}/rounds/1/failures", json={"model": MODELS[0], "reason": "GPU out of memory"}
    )
    assert failure.status_code == 202
    [item] = api.get("/api/rounds", params={"status": "awaiting_outputs"}).json()["rounds"]
    assert [(f["model"], f["reason"]) for f in item["runner_failures"]] == [(MODELS[0], "GPU out of memory")]


def file_at(github, sha: str, path: str) -> str:
    git = github.repo(REPO).git
    return git.read_blob(git.entry_at(sha, path).sha).decode()


def test_the_reference_runner_answers_round_one_and_the_pair_opens(api, github, services, blinding):
    task_id = models_only_task(services, blinding)
    runner = Runner(TandemClient(api.server_url, token(services, name="runner-2")), AGENT, timeout=60)
    assert runner.poll_once() == {f"{task_id}/1": "accepted"}
    run_jobs(services)
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        assert task.status == "open", task.failure_reason
        heads = {side.output.model: side.head_sha for side in task.pair.sides}
    notes = {model: file_at(github, sha, "NOTES.md") for model, sha in heads.items()}
    assert notes[MODELS[0]] != notes[MODELS[1]]
    for text in notes.values():
        assert text.startswith("# Notes\n\n## Round 1 (1 prompts so far), by agent ")
        assert text.endswith("\n\nFix the command injection.\n")
    assert runner.poll_once() == {}


@pytest.mark.parametrize(
    ("script", "timeout", "reason"),
    [
        ("import sys; sys.exit('no GPU left')", 60, "the command exited with 1: no GPU left"),
        ("import time; time.sleep(60)", 1, "the command ran over 1 s and was stopped"),
        ("pass", 60, "the command changed no file"),
    ],
)
def test_an_agent_that_fails_is_reported_with_its_reason(api, services, blinding, script, timeout, reason):
    task_id = models_only_task(services, blinding)
    runner = Runner(
        TandemClient(api.server_url, token(services, name="runner-3")), [sys.executable, "-c", script], timeout
    )
    assert runner.poll_once() == {f"{task_id}/1": "failed"}
    assert runner.poll_once() == {}  # not again at the next poll: later, or when a webhook says so
    [item] = api.get("/api/rounds", params={"status": "awaiting_outputs"}).json()["rounds"]
    assert [(f["model"], f["reason"]) for f in item["runner_failures"]] == [(model, reason) for model in MODELS]


def test_round_submit_from_the_command_line(github, services, blinding, tmp_path):
    from tests.support.cli import TANDEM

    task_id = models_only_task(services, blinding)
    env = tandem_env(services, tmp_path)

    def submit(name: str, data: dict) -> subprocess.CompletedProcess:
        (tmp_path / name).write_text(json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data))
        command = [TANDEM, "round", "submit", str(task_id), "1", str(tmp_path / name)]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    bad = submit("bad.yml", {"outputs": [{"model": MODELS[0]}]})
    assert (bad.returncode, bad.stderr) == (
        1,
        f"error: {tmp_path / 'bad.yml'}: outputs.0: give exactly one of patch or files\n",
    )
    first = submit("outputs.yml", outputs("X = 1\n", "Y = 2\n"))
    assert (first.returncode, first.stdout, first.stderr) == (0, "accepted\n", "")
    assert submit("again.json", outputs("X = 1\n", "Y = 2\n")).stdout == "duplicate\n"
    other = submit("other.yml", outputs("X = 3\n", "Y = 4\n"))
    assert other.returncode == 1 and other.stderr.startswith("error: ") and "round 1" in other.stderr


CHECKING_AGENT = """
import json, os, sys
conversation = json.load(sys.stdin)
leaked = [name for name in ("TANDEM_RUNNER_TOKEN", "TANDEM_RUNNER_SECRET") if name in os.environ]
if leaked:
    sys.exit("the agent inherited " + ", ".join(leaked))
seen = [os.environ["TANDEM_TASK"], os.environ["TANDEM_ROUND"], os.environ["TANDEM_PROMPT"], conversation[-1]["prompt"]]
open("seen.txt", "w").write(repr(seen) + str(len(os.environ["TANDEM_MODEL"])))
"""


def test_the_agent_gets_the_round_but_not_the_runners_credentials(api, services, blinding, monkeypatch, tmp_path):
    monkeypatch.setenv("TANDEM_RUNNER_TOKEN", "tandem_not-for-the-agent")
    monkeypatch.setenv("TANDEM_RUNNER_SECRET", "not-for-the-agent-either")
    task_id = models_only_task(services, blinding)
    runner = Runner(
        TandemClient(api.server_url, token(services, name="runner-5")), [sys.executable, "-c", CHECKING_AGENT], 60
    )
    [item] = runner.client.awaiting_rounds()
    patch = runner._answer_for(item, MODELS[0], runner.client.base_archive(task_id), tmp_path / "worktree")
    seen = repr([str(task_id), "1", "Fix the command injection.", "Fix the command injection."]) + str(len(MODELS[0]))
    assert "+++ b/seen.txt" in patch and f"+{seen}" in patch


def test_an_agent_over_its_time_is_stopped_with_what_it_started(api, services, blinding, tmp_path):
    pid_file = tmp_path / "helper.pid"
    helper = [sys.executable, "-c", "import time; time.sleep(120)"]
    script = (
        "import subprocess, time\n"
        f"helper = subprocess.Popen({helper!r}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"open({str(pid_file)!r}, 'w').write(str(helper.pid))\n"
        "time.sleep(120)\n"
    )
    models_only_task(services, blinding)
    runner = Runner(TandemClient(api.server_url, token(services, name="runner-6")), [sys.executable, "-c", script], 1)
    assert list(runner.poll_once().values()) == ["failed"]
    pid = int(pid_file.read_text())
    state = Path(f"/proc/{pid}/stat")
    # Killed; gone once init reaps it (a zombie meanwhile).
    assert not state.exists() or state.read_text().split(") ")[1][0] == "Z"


def test_a_file_the_base_tracks_but_ignores_is_part_of_the_answer(api, github, services, blinding, tmp_path):
    github.commit_files(REPO, {".gitignore": "*.cfg\n", "settings.cfg": "debug = false\n"})
    task_id = models_only_task(services, blinding)
    edit = "open('settings.cfg', 'w').write('debug = true\\n')"
    runner = Runner(TandemClient(api.server_url, token(services, name="runner-7")), [sys.executable, "-c", edit], 60)
    [item] = runner.client.awaiting_rounds()
    patch = runner._answer_for(item, MODELS[0], runner.client.base_archive(task_id), tmp_path / "worktree")
    assert "-debug = false\n+debug = true\n" in patch
