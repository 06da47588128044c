"""Opening a task's two blinded draft PRs on a mirror (against the GitHub emulator and real git)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tandem.domain import pairs, tasks
from tandem.domain.task_spec import InvalidTask, parse_task
from tandem.infra import redis_keys
from tandem.infra.models import Task
from tests import github_views as views
from tests.conftest import run_jobs
from tests.support.tasks import failure

REPO = "evals-org/mlflow"


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def make_patch(emu, tmp_path: Path) -> str:
    """A real `git diff --binary`: new, deleted, renamed, binary and executable files."""
    work = tmp_path / "author"
    git("clone", "-q", emu.repository(REPO).clone_url, str(work), cwd=tmp_path)
    (work / "src" / "app.py").write_text(
        "import subprocess\n\n\ndef install(package):\n    subprocess.run(['pip', 'install', package], check=True)\n"
    )
    (work / "src" / "validate.py").write_text("def safe(name):\n    return name.isidentifier()\n")
    git("rm", "-q", "src/obsolete.py", cwd=work)
    git("mv", "src/old_name.py", "src/new_name.py", cwd=work)
    (work / "assets" / "logo.bin").write_bytes(bytes(range(255, -1, -1)) * 3)
    (work / "scripts" / "run.sh").chmod(0o755)
    git("add", "-A", cwd=work)
    return git("diff", "--cached", "--binary", "-M", "HEAD", cwd=work)


def task_data(patch: str, **overrides) -> dict:
    data = {
        "repo": REPO,
        "base": "main",
        "prompt": "Fix the command injection in how packages are installed.",
        "outputs": [
            {"model": "model-x-2026-10", "patch": patch},
            {"model": "model-y-2026-09", "files": {"src/app.py": "SAFE = True\n", "src/obsolete.py": None}},
        ],
        "raters": ["rater-one", "rater-two"],
        "metadata": {"source": "secret-benchmark-suite"},
    }
    return data | overrides


def submit(services, blinding, data: dict) -> int:
    blinding.add_task(data)
    return tasks.submit(services, parse_task(data), submitted_by="test")


def tree_files(clone: Path, ref: str) -> dict[str, tuple[str, bytes]]:
    listing = git("ls-tree", "-r", "-z", ref, cwd=clone)
    files = {}
    for entry in filter(None, listing.split("\0")):
        meta, path = entry.split("\t", 1)
        mode, _kind, sha = meta.split()
        blob = subprocess.run(["git", "cat-file", "blob", sha], cwd=clone, capture_output=True, check=True).stdout
        files[path] = (mode, blob)
    return files


def test_a_task_opens_exactly_two_blinded_draft_prs_with_the_applied_changes(github, services, blinding, tmp_path):
    patch = make_patch(github, tmp_path)
    task_id = submit(services, blinding, task_data(patch))
    run_jobs(services)

    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        assert task.status == "open", task.failure_reason
        sides = {side.letter: side for side in task.pair.sides}
        models = {letter: side.output.model for letter, side in sides.items()}
        base_sha = task.base_sha
    pulls = [p for p in views.pulls(github, REPO) if p["title"].startswith(f"Task {task_id} ")]
    assert sorted(p["title"] for p in pulls) == [f"Task {task_id} · Option A", f"Task {task_id} · Option B"]
    by_letter = {p["title"][-1]: p for p in pulls}
    for letter, pull in by_letter.items():
        twin = by_letter["B" if letter == "A" else "A"]
        assert pull["draft"] is True
        assert pull["state"] == "open"
        assert twin["html_url"] in pull["body"], "each PR links its twin"
        assert set(pull["labels"]) == {"tandem", "tandem:pending"}
        assert set(pull["requested_reviewers"]) == {"rater-one", "rater-two"}
        assert pull["head_sha"] == sides[letter].head_sha
        assert pull["head_ref"] == sides[letter].branch
        [check] = views.check_runs(github, REPO, pull["head_sha"])
        assert check["name"] == "Tandem" and check["status"] == "in_progress"
        assert check["output"]["title"] == "Awaiting judgment"

    # The head commits hold exactly the applied changes.
    clone = tmp_path / "check"
    git("clone", "-q", "--mirror", github.repo(REPO).clone_url, str(clone), cwd=tmp_path)
    base = tree_files(clone, base_sha)
    for letter, side in sides.items():
        head = tree_files(clone, side.head_sha)
        assert git("rev-parse", f"{side.head_sha}^", cwd=clone).strip() == base_sha
        if models[letter] == "model-x-2026-10":
            expected = dict(base)
            del expected["src/obsolete.py"]
            expected["src/new_name.py"] = expected.pop("src/old_name.py")
            expected["src/validate.py"] = ("100644", b"def safe(name):\n    return name.isidentifier()\n")
            expected["src/app.py"] = (
                "100644",
                b"import subprocess\n\n\ndef install(package):\n"
                b"    subprocess.run(['pip', 'install', package], check=True)\n",
            )
            expected["assets/logo.bin"] = ("100644", bytes(range(255, -1, -1)) * 3)
            expected["scripts/run.sh"] = ("100755", base["scripts/run.sh"][1])
        else:
            expected = {k: v for k, v in base.items() if k != "src/obsolete.py"}
            expected["src/app.py"] = ("100644", b"SAFE = True\n")
        assert head == expected, letter

    # Both commits look the same but for their trees: author, time, message.
    def meta(sha):
        return git("log", "-1", "--format=%an <%ae>|%cn <%ce>|%at|%ct|%B", sha, cwd=clone)

    assert meta(sides["A"].head_sha) == meta(sides["B"].head_sha)


def test_re_running_the_job_changes_nothing(github, services, blinding):
    task_id = submit(
        services,
        blinding,
        task_data(
            None,
            outputs=[
                {"model": "model-x-2026-10", "files": {"a.txt": "a\n"}},
                {"model": "model-y-2026-09", "files": {"b.txt": "b\n"}},
            ],
        ),
    )
    run_jobs(services)
    github.reset_requests()
    with services.storage.transaction() as session:
        session.get(Task, task_id).status = "opening"
    assert pairs.open_pair(services, task_id) == "open"
    assert [r for r in github.requests if r.method != "GET" and "access_tokens" not in r.path] == []


def test_an_installations_first_pair_reads_only_its_config(github, services, blinding):
    """Its token, one GraphQL query for the organization's and the mirror's tandem.yml, and the
    eight writes: git finds the mirror at GitHub's web address, so nothing asks GitHub for it
    (GET /repos). The issue's budget: at most 10 requests."""
    task_id = recorded_task(services, blinding)
    github.reset_requests()
    assert pairs.open_pair(services, task_id) == "open"
    mirror = f"/repos/{REPO}"
    assert [f"{r.method} {r.path}" for r in github.requests] == [
        f"POST /app/installations/{github.installation.id}/access_tokens",
        "POST /graphql",
        f"POST {mirror}/pulls",
        f"POST {mirror}/pulls",
        f"PATCH {mirror}/issues/1",
        f"PATCH {mirror}/issues/2",
        f"POST {mirror}/pulls/1/requested_reviewers",
        f"POST {mirror}/pulls/2/requested_reviewers",
        f"POST {mirror}/check-runs",
        f"POST {mirror}/check-runs",
    ]
    asked = github.requests[1].json["variables"]
    assert sorted(f"{asked[key]}/{asked[key[:-1] + 'n']}" for key in asked if key.endswith("o")) == sorted(
        ["evals-org/.github", REPO]
    )


class Killed(BaseException):
    """A worker dying mid-job: not an Exception, so nothing in the job handles it."""


def steps_of_a_clean_run(github, services, blinding) -> list[str]:
    seen = []
    task_id = recorded_task(services, blinding, -1)
    assert pairs.open_pair(services, task_id, step_done=seen.append) == "open"
    return seen


def recorded_task(services, blinding, number: int = 0) -> int:
    """A task recorded (not queued), whose pair the test opens itself."""
    data = task_data(
        None,
        outputs=[
            {"model": "model-x-2026-10", "files": {"a.txt": f"a{number}\n"}},
            {"model": "model-y-2026-09", "files": {"b.txt": f"b{number}\n"}},
        ],
    )
    blinding.add_task(data)
    with services.storage.transaction() as session:
        return tasks.create_task(session, parse_task(data), "test").id


def open_pair_killed_after(services, task_id: int, step: str) -> None:
    """Run the opening until `step` is done, and die there."""

    def kill(name):
        if name == step:
            raise Killed(step)

    with pytest.raises(Killed):
        pairs.open_pair(services, task_id, step_done=kill)


def test_a_job_killed_after_any_step_and_run_again_leaves_exactly_one_pair(github, services, blinding):
    steps = steps_of_a_clean_run(github, services, blinding)
    assert len(steps) >= 10, steps
    for number, step in enumerate(steps):
        task_id = recorded_task(services, blinding, number)
        open_pair_killed_after(services, task_id, step)
        assert pairs.open_pair(services, task_id) == "open", step

        pulls = [p for p in views.pulls(github, REPO, state="all") if p["title"].startswith(f"Task {task_id} ")]
        assert sorted(p["title"][-1] for p in pulls) == ["A", "B"], step
        with services.storage.transaction() as session:
            sides = session.get(Task, task_id).pair.sides
            for side in sides:
                assert len(views.check_runs(github, REPO, side.head_sha)) == 1, step
            branches = {side.branch for side in sides}
        assert {b for b in views.branches(github, REPO) if b.startswith(f"tandem/{task_id}/")} == branches, step


def test_a_repo_where_tandem_is_not_installed_is_refused_at_submission(github, services):
    with pytest.raises(InvalidTask) as error:
        tasks.submit(services, parse_task(task_data("x", repo="someone/else")), "test")
    assert error.value.errors == [
        {"field": "repo", "problem": "Tandem is not installed on someone/else (or it is suspended)"}
    ]


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"outputs": [{"model": "m1", "patch": "x"}] * 3}, "outputs", "exactly two outputs are compared; got 3"),
        ({"prompt": "  \n"}, "prompt", "is empty"),
        (
            {"outputs": [{"model": "m1", "patch": "x" * (50 * 2**20)}, {"model": "m2", "patch": "y"}]},
            "outputs.0",
            "output is 52.4 MB; the limit is 10 MB",
        ),
        (
            {"outputs": [{"model": "m1"}, {"model": "m2", "patch": "y"}]},
            "outputs.0",
            "give exactly one of patch or files",
        ),
        ({"repo": "no-slash"}, "repo", "must be owner/name"),
        (
            {"outputs": [{"model": "m1", "files": {"../etc/passwd": "x"}}, {"model": "m2", "patch": "y"}]},
            "outputs.0.files",
            "'../etc/passwd' is not a relative path inside the repository",
        ),
        (
            {
                "outputs": [
                    {"model": "m1", "patch": "y"},
                    {"model": "m2", "files": {"README.md": "x", "readme.md": "y"}},
                ]
            },
            "outputs.1.files",
            "README.md and readme.md differ only in case, so checkouts on macOS and Windows break",
        ),
        (
            {"outputs": [{"model": "m1", "files": {"Src/a.py": "x", "src/b.py": "y"}}, {"model": "m2", "patch": "y"}]},
            "outputs.0.files",
            "Src and src differ only in case, so checkouts on macOS and Windows break",
        ),
        (
            {"outputs": [{"model": "m1", "patch": "same"}, {"model": "m2", "patch": "same"}]},
            "outputs",
            "outputs[0] (m1) and outputs[1] (m2) make the same change (identical text); the two PRs would be identical",
        ),
        (
            {
                "outputs": [
                    {"model": "m1", "files": {"a": "x", "b": None}},
                    {"model": "m2", "files": {"b": None, "a": "x"}},
                ]
            },
            "outputs",
            "outputs[0] (m1) and outputs[1] (m2) make the same change (identical text); the two PRs would be identical",
        ),
    ]
    + [
        (
            {"outputs": [{"model": "m1", "files": {path: "x"}}, {"model": "m2", "patch": "y"}]},
            "outputs.0.files",
            f"{path!r} is not a relative path inside the repository",
        )
        for path in ("src/./x.py", "./x.py", "src//x.py", "src/", "/abs.py", ".GIT/config", "a/.git/hooks/x", "")
    ],
)
def test_bad_task_files_name_the_field_and_the_problem(change, field, problem):
    with pytest.raises(InvalidTask) as error:
        parse_task(task_data("x") | change)
    assert {"field": field, "problem": problem} in error.value.errors


def test_position_draws_are_recorded_and_balanced(storage):
    from tandem.infra.models import Installation, Repository

    with storage.transaction() as session:
        session.add(Installation(id=1, account_login="evals-org", account_id=1, account_type="Organization"))
        session.add(Repository(id=1, installation_id=1, full_name=REPO))
    draws = []
    with storage.transaction() as session:
        for _ in range(400):
            task = tasks.create_task(
                session,
                parse_task(
                    task_data(
                        "x",
                        outputs=[
                            {"model": "model-x-2026-10", "patch": "x"},
                            {"model": "model-y-2026-09", "patch": "y"},
                        ],
                    )
                ),
                "t",
            )
            draws.append(pairs.ensure_pair(session, task).a_is_first_output)
    # 400 fair coin flips land within 120..280 heads with probability 1 - 1e-15.
    assert 120 < sum(draws) < 280


def test_a_task_whose_repository_went_away_fails_at_once(github, services, blinding):
    task_id = submit(
        services,
        blinding,
        task_data(
            None,
            outputs=[
                {"model": "model-x-2026-10", "files": {"a.txt": "a\n"}},
                {"model": "model-y-2026-09", "files": {"b.txt": "b\n"}},
            ],
        ),
    )
    github.uninstall_app(github.installation.id)
    github.drain()
    run_jobs(services)
    assert failure(services, task_id) == "Tandem is not installed on evals-org/mlflow (or it is suspended)"


def test_a_stuck_task_is_queued_again_and_opens(github, services, blinding):
    from datetime import timedelta

    task_id = submit(
        services,
        blinding,
        task_data(
            None,
            outputs=[
                {"model": "model-x-2026-10", "files": {"a.txt": "a\n"}},
                {"model": "model-y-2026-09", "files": {"b.txt": "b\n"}},
            ],
        ),
    )
    services.queue("pairs").empty()  # the job is lost
    assert tasks.requeue_stuck(services, timedelta(minutes=30)) == [], "not stuck yet"
    assert tasks.requeue_stuck(services, timedelta(0)) == [task_id]
    assert tasks.requeue_stuck(services, timedelta(0)) == [], "queued already"
    run_jobs(services)
    with services.storage.transaction() as session:
        assert session.get(Task, task_id).status == "open"


def test_a_run_killed_after_its_push_builds_on_the_same_base_even_if_the_base_moved(github, services, blinding):
    """The push landed but its heads were not recorded; meanwhile someone pushed to main. The re-run
    must rebuild the same commits (on the base the first run resolved), so its push is a no-op,
    rather than build on the new main and be refused as not a fast-forward."""
    task_id = recorded_task(services, blinding)

    def heads() -> dict[str, str]:
        return {
            ref.removeprefix("refs/heads/"): sha
            for ref, sha in github.repo(REPO).git.refs().items()
            if ref.startswith("refs/heads/")
        }

    first_main = heads()["main"]
    open_pair_killed_after(services, task_id, "branches pushed")
    github.commit_files(REPO, {"moved.txt": "main moved on\n"}, branch="main")
    assert heads()["main"] != first_main

    assert pairs.open_pair(services, task_id) == "open"
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        assert task.base_sha == first_main
        recorded = {side.branch: side.head_sha for side in task.pair.sides}
    assert {b: sha for b, sha in heads().items() if b.startswith(f"tandem/{task_id}/")} == recorded


def test_a_task_whose_job_was_lost_is_swept_up_within_minutes_once_across_workers(github, services, blinding):
    from datetime import timedelta

    from tandem.infra.db import utcnow
    from workers import schedule

    task_id = submit(
        services,
        blinding,
        task_data(
            None,
            outputs=[
                {"model": "model-x-2026-10", "files": {"a.txt": "a\n"}},
                {"model": "model-y-2026-09", "files": {"b.txt": "b\n"}},
            ],
        ),
    )
    pairs = services.queue("pairs")
    pairs.empty()  # the job is lost
    with services.storage.transaction() as session:
        session.get(Task, task_id).updated_at = utcnow() - schedule.STUCK_AFTER - timedelta(seconds=1)
    # An opening that met a rate limit waits under another job id: it is not lost.
    waiting = pairs.enqueue_in(timedelta(minutes=5), "workers.pairs.open_pair", task_id)
    assert schedule.sweep_left_behind(services) == []
    waiting.delete()
    services.redis.delete(redis_keys.SWEEP_LOCK)  # the next period
    assert schedule.sweep_left_behind(services) == [f"requeued stuck task {task_id}"]
    pairs.empty()
    assert schedule.sweep_left_behind(services) == [], "one sweep per period, however many workers"
    assert timedelta(minutes=1) >= schedule.STUCK_AFTER and timedelta(seconds=30) >= schedule.SWEEP_EVERY
