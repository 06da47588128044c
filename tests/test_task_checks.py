"""A task checked against its mirror at submission (400 naming the field), and the worker's own
checks kept as the last line (against the GitHub emulator and real git)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tandem.domain import tasks
from tandem.domain.task_spec import InvalidTask, parse_task
from tandem.infra import queue, tokens
from tandem.infra.models import Task
from tests import github_views as views
from tests.conftest import run_jobs, settle
from tests.support.tasks import binary_literal, failure

REPO = "evals-org/mlflow"
# The whole of src/app.py at the base, replaced by one line: the same tree as files {src/app.py: SAFE}.
SAFE = "SAFE = True\n"
SAFE_PATCH = (
    "diff --git a/src/app.py b/src/app.py\n--- a/src/app.py\n+++ b/src/app.py\n@@ -1,5 +1 @@\n"
    "-import subprocess\n-\n-\n-def install(package):\n-    subprocess.run(f'pip install {package}', shell=True)\n"
    "+SAFE = True\n"
)
STALE_PATCH = (
    "diff --git a/src/app.py b/src/app.py\n--- a/src/app.py\n+++ b/src/app.py\n"
    "@@ -1,2 +1,2 @@\n-import os\n+import shlex\n \n"
)


def task(**overrides) -> dict:
    return {
        "repo": REPO,
        "base": "main",
        "prompt": "Fix the command injection.",
        "outputs": [
            {"model": "model-x-2026-10", "files": {"src/app.py": "X = 1\n"}},
            {"model": "model-y-2026-09", "files": {"src/app.py": "Y = 2\n"}},
        ],
    } | overrides


def submit(services, blinding, data: dict) -> int:
    blinding.add_task(data)
    return tasks.submit(services, parse_task(data), "test")


def refused(services, blinding, data: dict) -> list[dict[str, str]]:
    """The problems a submission is refused with; nothing may have been recorded or queued."""
    blinding.add_task(data)
    with services.storage.transaction() as session:
        recorded = session.query(Task).count()
    with pytest.raises(InvalidTask) as error:
        tasks.submit(services, parse_task(data), "test")
    with services.storage.transaction() as session:
        assert session.query(Task).count() == recorded
    assert services.queue(queue.PAIRS).count == 0
    return error.value.errors


def record(services, blinding, data: dict) -> int:
    """A task as the worker gets it when the submission checks could not tell (see task_checks)."""
    blinding.add_task(data)
    with services.storage.transaction() as session:
        task_id = tasks.create_task(session, parse_task(data), "test").id
    services.enqueue(queue.PAIRS, "workers.pairs.open_pair", task_id)
    return task_id


def assert_nothing_on_github(github, task_id: int) -> None:
    assert [p for p in views.pulls(github, REPO, state="all") if p["title"].startswith(f"Task {task_id} ")] == []
    assert [b for b in views.branches(github, REPO) if b.startswith(f"tandem/{task_id}/")] == []


@pytest.fixture
def cloned(github, services, blinding):
    """The mirror after a worker on this machine opened a pair on it, so its clone is here."""
    settle(github, services)
    task_id = submit(
        services,
        blinding,
        task(
            outputs=[
                {"model": "model-x-2026-10", "files": {"first.txt": "1\n"}},
                {"model": "model-y-2026-09", "files": {"first.txt": "2\n"}},
            ]
        ),
    )
    run_jobs(services)
    with services.storage.transaction() as session:
        assert session.get(Task, task_id).status == "open"
    return github


# --- the mirror and the base, asked of GitHub ---------------------------------------------------


def test_a_repository_not_marked_as_a_mirror_is_refused_at_submission(github, services, blinding):
    problems = refused(services, blinding, task(repo="evals-org/not-a-mirror"))
    assert problems == [
        {
            "field": "repo",
            "problem": "evals-org/not-a-mirror is not marked as a mirror: "
            "add `mirror: true` to .github/tandem.yml on its default branch",
        }
    ]


def test_a_malformed_tandem_yml_is_refused_at_submission(github, services, blinding):
    github.commit_files(REPO, {".github/tandem.yml": "mirror: true\nraters_per_task: many\n"})
    [problem] = refused(services, blinding, task())
    assert problem["field"] == "repo"
    assert problem["problem"].startswith("invalid configuration: evals-org/mlflow/.github/tandem.yml: raters_per_task:")


@pytest.mark.parametrize("base", ["no-such-branch", "feature/missing", "0123456789abcdef0123456789abcdef01234567"])
def test_a_base_that_does_not_exist_is_refused_at_submission(github, services, blinding, base):
    assert refused(services, blinding, task(base=base)) == [
        {"field": "base", "problem": f"{base!r} is neither a branch nor a commit of {REPO}"}
    ]


def test_an_existing_branch_or_commit_is_accepted(github, services, blinding):
    first = github.commit_files(REPO, {"feature.txt": "f\n"}, branch="feature/x")
    github.commit_files(REPO, {"cafe.txt": "c\n"}, branch="cafe")
    for base in ("feature/x", first, first[:7], "cafe", "main"):  # (a short SHA is left to the worker)
        submit(services, blinding, task(base=base))
    assert services.queue(queue.PAIRS).count == 5


def test_every_problem_is_listed(github, services, blinding):
    fields = {
        problem["field"] for problem in refused(services, blinding, task(repo="evals-org/not-a-mirror", base="gone"))
    }
    assert fields == {"repo", "base"}


def test_the_api_answers_400_naming_the_field(github, services, blinding):
    data = task(base="no-such-branch")
    blinding.add_task(data)
    with services.storage.transaction() as session:
        token = tokens.create_token(session, "research-team", team="research", scopes=[tokens.Scope.SUBMIT])
    with TestClient(create_app(services)) as client:
        response = client.post("/api/tasks", json=data, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    assert {
        "field": "base",
        "problem": f"'no-such-branch' is neither a branch nor a commit of {REPO}",
    } in response.json()["errors"]
    assert services.queue(queue.PAIRS).count == 0


def test_when_github_cannot_answer_the_task_is_queued_and_the_worker_checks(github, services, blinding):
    settle(github, services)
    github.faults.fail(status=403, times=1, path_contains="/git/ref/")
    task_id = submit(services, blinding, task(base="no-such-branch"))
    run_jobs(services)
    assert "'no-such-branch' is neither a branch nor a commit" in failure(services, task_id)
    assert_nothing_on_github(github, task_id)


# --- the outputs, built in this machine's clone ---------------------------------------------------


def test_a_patch_that_does_not_apply_is_refused_at_submission_when_the_clone_is_here(cloned, services, blinding):
    problems = refused(
        services,
        blinding,
        task(
            outputs=[
                {"model": "model-x-2026-10", "files": {"a.txt": "a\n"}},
                {"model": "model-y-2026-09", "patch": STALE_PATCH},
            ]
        ),
    )
    assert problems == [
        {
            "field": "outputs.1.patch",
            "problem": "outputs[1] (model-y-2026-09) does not apply to main: "
            "patch failed: src/app.py:1; src/app.py: patch does not apply",
        }
    ]


def test_an_output_writing_a_file_larger_than_github_takes_is_refused_at_submission(cloned, services, blinding):
    """GitHub refuses a push with a file over 100 MB, and a patch's binary hunk inflates a
    thousandfold: refused now, naming the file, not retried at the PRs' push until the task fails."""
    huge = binary_literal("data/huge.bin", 101 * 2**20)
    problems = refused(
        services,
        blinding,
        task(
            outputs=[{"model": "model-x-2026-10", "patch": huge}, {"model": "model-y-2026-09", "files": {"b": "b\n"}}]
        ),
    )
    assert problems == [
        {
            "field": "outputs.0.patch",
            "problem": "outputs[0] (model-x-2026-10) writes data/huge.bin of 101.0 MB; GitHub takes files up to 100 MB",
        }
    ]


def test_a_file_map_that_cannot_be_written_is_refused_at_submission_when_the_clone_is_here(cloned, services, blinding):
    problems = refused(
        services,
        blinding,
        task(
            outputs=[
                {"model": "model-x-2026-10", "files": {"README.MD": "a\n"}},
                {"model": "model-y-2026-09", "files": {"b.txt": "b\n"}},
            ]
        ),
    )
    assert [problem["field"] for problem in problems] == ["outputs.0.files"]
    assert "README.MD and README.md differ only in case" in problems[0]["problem"]


def test_a_patch_and_a_file_map_making_the_same_tree_are_refused_at_submission(cloned, services, blinding):
    problems = refused(
        services,
        blinding,
        task(
            outputs=[
                {"model": "model-x-2026-10", "patch": SAFE_PATCH},
                {"model": "model-y-2026-09", "files": {"src/app.py": SAFE}},
            ]
        ),
    )
    assert problems == [
        {
            "field": "outputs",
            "problem": "outputs[0] (model-x-2026-10) and outputs[1] (model-y-2026-09) make the same change on main; "
            "the two PRs would be identical",
        }
    ]


def test_good_outputs_pass_the_clone_checks_and_open(cloned, services, blinding):
    task_id = submit(
        services,
        blinding,
        task(
            outputs=[
                {"model": "model-x-2026-10", "patch": SAFE_PATCH},
                {"model": "model-y-2026-09", "files": {"src/app.py": "Y = 2\n"}},
            ]
        ),
    )
    run_jobs(services)
    with services.storage.transaction() as session:
        assert session.get(Task, task_id).status == "open"


# --- the worker, the last line ---------------------------------------------------------------------


def test_the_worker_names_the_output_that_does_not_apply_by_index_and_model(github, services, blinding):
    task_id = record(
        services,
        blinding,
        task(
            outputs=[
                {"model": "model-x-2026-10", "files": {"a.txt": "a\n"}},
                {"model": "model-y-2026-09", "patch": STALE_PATCH},
            ]
        ),
    )
    run_jobs(services)
    reason = failure(services, task_id)
    assert reason == (
        "outputs[1] (model-y-2026-09) does not apply to main: "
        "patch failed: src/app.py:1; src/app.py: patch does not apply"
    )
    assert_nothing_on_github(github, task_id)  # and the blinding audit finds no model name on GitHub


def test_the_worker_refuses_two_outputs_making_the_same_tree(github, services, blinding):
    task_id = record(
        services,
        blinding,
        task(
            outputs=[
                {"model": "model-x-2026-10", "patch": SAFE_PATCH},
                {"model": "model-y-2026-09", "files": {"src/app.py": SAFE}},
            ]
        ),
    )
    run_jobs(services)
    assert failure(services, task_id) == (
        "outputs[0] (model-x-2026-10) and outputs[1] (model-y-2026-09) make the same change on main; "
        "the two PRs would be identical"
    )
    assert_nothing_on_github(github, task_id)


def test_the_worker_still_refuses_what_slipped_past_submission(github, services, blinding):
    missing_base = record(services, blinding, task(base="no-such-branch"))
    not_a_mirror = record(services, blinding, task(repo="evals-org/not-a-mirror"))
    run_jobs(services)
    assert "'no-such-branch' is neither a branch nor a commit" in failure(services, missing_base)
    assert "not marked as a mirror" in failure(services, not_a_mirror)
    assert views.branches(github, "evals-org/not-a-mirror") == ["main"]
