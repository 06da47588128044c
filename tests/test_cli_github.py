"""The `tandem` command against the emulator: tasks, tokens, export, doctor, mirrors."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_jobs, settle, small_task, tandem_env
from tests.support.cli import TANDEM


@pytest.fixture
def tandem(github, services, tmp_path):
    """Run `tandem ...` as a maintainer would, configured for this test's GitHub, database and Redis."""
    env = tandem_env(services, tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([TANDEM, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    return run


def write_task(tmp_path: Path, blinding, **overrides) -> Path:
    path = tmp_path / "task.yml"
    path.write_text(yaml.safe_dump(small_task(blinding, **overrides)))
    return path


def test_submit_show_and_export_from_the_command_line(github, services, tandem, tmp_path, blinding):
    submitted = tandem("task", "submit", str(write_task(tmp_path, blinding)))
    assert submitted.returncode == 0, submitted.stderr
    task_id = int(submitted.stdout)
    assert json.loads(tandem("task", "show", str(task_id)).stdout)["status"] == "queued"

    run_jobs(services)
    shown = json.loads(tandem("task", "show", str(task_id)).stdout)
    assert shown["status"] == "open"
    assert set(shown["pull_requests"]) == {"A", "B"}

    with services.storage.transaction() as session:
        from tandem.infra.models import Task

        number = session.get(Task, task_id).pair.side("A").pr_number
    github.as_user("rater-one").comment("evals-org/mlflow", number, "/prefer A\nShorter.")
    settle(github, services)
    exported = tandem("export", str(tmp_path / "out.jsonl"), "--repo", "evals-org/mlflow")
    assert exported.returncode == 0, exported.stderr
    [row] = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert row["verdict"] == "A" and row["rationale"] == "Shorter."
    assert {row["model_a"], row["model_b"]} == {"model-x-2026-10", "model-y-2026-09"}
    assert tandem("export", "-", "--repo", "other/repo").stdout == ""

    # A nightly job: each run hands the next one a token, and gets only what changed in between.
    cursor = tmp_path / "cursor"
    assert tandem("export", str(tmp_path / "all.jsonl"), "--cursor-out", str(cursor)).returncode == 0
    github.as_user("rater-one").comment("evals-org/mlflow", number, "/prefer B")
    settle(github, services)
    changed = tandem("export", "-", "--cursor", cursor.read_text().strip())
    assert [(r["verdict"], r["current"]) for r in map(json.loads, changed.stdout.splitlines())] == [
        ("A", False),
        ("B", True),
    ]
    [token] = [line.removeprefix("cursor: ") for line in changed.stderr.splitlines() if line.startswith("cursor: ")]
    assert tandem("export", "-", "--cursor", token).stdout == ""
    refused = tandem("export", "-", "--cursor", "0.0")
    assert refused.returncode == 1 and "not a cursor" in refused.stderr


def test_a_bad_task_file_lists_each_problem(tandem, tmp_path, blinding):
    result = tandem("task", "submit", str(write_task(tmp_path, blinding, prompt="", outputs=[])))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'task.yml'}: prompt: is empty",
        f"error: {tmp_path / 'task.yml'}: outputs: exactly two outputs are compared; got 0",
    ]


def test_a_token_is_printed_once_and_names_are_unique(tandem):
    first = tandem("token", "create", "--name", "research", "--team", "lab", "--scope", "submit,read")
    assert first.returncode == 0 and first.stdout.startswith("tandem_")
    again = tandem("token", "create", "--name", "research", "--team", "other", "--scope", "read")
    assert again.returncode == 1
    assert again.stderr.strip() == "error: a token named 'research' exists already"


def test_doctor_reports_an_invalid_mirror_config(github, services, tandem, tmp_path, blinding):
    assert tandem("task", "submit", str(write_task(tmp_path, blinding))).returncode == 0
    assert "ok    mirrors" in tandem("doctor").stdout
    github.commit_files("evals-org/mlflow", {".github/tandem.yml": "mirror: true\nraters_per_task: zero\n"})
    result = tandem("doctor")
    assert result.returncode == 1
    assert (
        "FAIL  mirrors: evals-org/mlflow/.github/tandem.yml: raters_per_task: Input should be a valid integer"
        in result.stdout
    )
    assert "ok    github" in result.stdout


def test_a_mirror_the_app_may_not_fork_says_what_to_do(github, tandem):
    github.create_org("upstream-org")
    github.create_repository("upstream-org", "mlflow", files={"README.md": "upstream\n"})
    result = tandem("mirror", "create", "upstream-org/mlflow", "--org", "evals-org")
    assert result.returncode == 1
    assert "forking needs the Administration (write) permission" in result.stderr


def test_a_mirror_on_an_org_without_tandem_is_refused(tandem):
    result = tandem("mirror", "create", "upstream-org/mlflow", "--org", "nobody")
    assert result.stderr.strip() == "error: Tandem is not installed on nobody: install the app there first"


def test_installations_lists_the_accounts_and_their_repositories(tandem):
    result = tandem("installations")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "evals-org (Organization, active)" in lines[0]
    assert {"\tevals-org/mlflow", "\tevals-org/not-a-mirror"} <= set(lines[1:])


def test_an_invalid_mirror_config_is_refused_at_submission_naming_the_field(
    github, services, tandem, tmp_path, blinding
):
    github.commit_files("evals-org/mlflow", {".github/tandem.yml": "mirror: true\nrubric: {scale: [5, 1]}\n"})
    path = write_task(tmp_path, blinding)
    result = tandem("task", "submit", str(path))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(
        f"error: {path}: repo: invalid configuration: evals-org/mlflow/.github/tandem.yml: "
    )
    assert "rubric.scale: scale must be [lowest, highest]" in result.stderr


def test_doctor_finds_git_at_the_mirrors_address_with_the_workers_token(github, tandem, tmp_path, blinding):
    github.repo("evals-org/mlflow").private = True  # git needs the installation's token to see it
    before_any_task = tandem("doctor")  # one installed repository stands for the mirrors to come
    assert "ok    git" in before_any_task.stdout.splitlines(), before_any_task.stdout
    assert tandem("task", "submit", str(write_task(tmp_path, blinding))).returncode == 0
    result = tandem("doctor")
    assert "ok    git" in result.stdout.splitlines(), result.stdout


@pytest.mark.parametrize("wrong", ["a port nothing listens on", "a path that is not GitHub's"])
def test_doctor_names_the_git_address_a_wrong_github_url_gives(github, services, tmp_path, blinding, wrong):
    with socket.socket() as unused:  # bound, never listening: connections to it are refused
        unused.bind(("127.0.0.1", 0))
        # (credentials in the URL, which must not be shown either)
        port = unused.getsockname()[1]
        web_url = f"http://doctor:pw-in-the-url@127.0.0.1:{port}" if wrong.startswith("a port") else f"{github.url}/web"
        shown = web_url.replace("doctor:pw-in-the-url@", "")
        env = tandem_env(services, tmp_path) | {"TANDEM_GITHUB_URL": web_url}
        doctor = [TANDEM, "doctor"]
        submit = [TANDEM, "task", "submit", str(write_task(tmp_path, blinding))]
        assert subprocess.run(submit, cwd=tmp_path, env=env, capture_output=True, timeout=120).returncode == 0
        result = subprocess.run(doctor, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    [problem] = [line for line in result.stdout.splitlines() if line.startswith("FAIL  git: ")]
    assert problem.startswith(f"FAIL  git: evals-org/mlflow: git cannot reach {shown}/evals-org/mlflow.git (")
    assert "check TANDEM_GITHUB_URL" in problem
    assert "ok    github" in result.stdout and "ok    mirrors" in result.stdout  # the API is where it was
    token = services.github.installation_token(github.installation.id)
    output = result.stdout + result.stderr
    assert token not in output and "ghs_" not in output and "Basic " not in output and "pw-in-the-url" not in output
