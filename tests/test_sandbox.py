"""`tandem demo` and `tandem sandbox`, as a user runs them: real processes (the sandbox's GitHub,
a private redis-server, `tandem serve`, `tandem worker`, `tandem runner`), nothing shared with the
suite's Redis or database, and all their state in the sandbox's directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tandem.sandbox import scenario
from tests.processes import wait_for

ROOT = Path(__file__).resolve().parents[1]
TANDEM = str(Path(sys.executable).with_name("tandem"))
ENV = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def processes_under(directory: Path) -> list[str]:
    """Processes working in `directory` or naming it on their command line (what a sandbox
    there started): none may outlive it."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(directory)) or str(directory) in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def test_demo_runs_the_whole_loop_prints_judgments_and_leaves_the_checkout_clean(tmp_path):
    project = tmp_path / "project"  # where a user runs it: a git checkout
    project.mkdir()
    git(project, "init", "-q")
    (project / "README.md").write_text("a project\n")
    git(project, "add", "README.md")
    git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "start")
    tandem_status = git(ROOT, "status", "--porcelain")

    done = subprocess.run([TANDEM, "demo"], cwd=project, env=ENV, capture_output=True, text=True, timeout=900)

    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout.splitlines()
    assert output[-1].startswith("4 judgments recorded."), done.stdout
    judged = [line for line in output if line.startswith("  judgment ")]
    assert [line.split(",")[1].split()[0] for line in judged] == ["alice", "bob", "alice", "bob"], done.stdout
    sandbox = project / ".tandem-demo"
    # Both PRs exist on the sandbox's GitHub: its mirror keeps refs/pull/N/head, as GitHub does.
    [mirror] = (sandbox / "github").rglob("mlflow.git")
    assert git(mirror, "for-each-ref", "--format=%(refname)", "refs/pull").split() == [
        "refs/pull/1/head",
        "refs/pull/2/head",
    ]
    records = [json.loads(line) for line in (sandbox / "demo" / "judgments.jsonl").read_text().splitlines()]
    judgments = [r for r in records if r["kind"] == "judgment"]
    assert sorted((j["round"], j["rater_login"]) for j in judgments) == [
        (1, "alice"),
        (1, "bob"),
        (2, "alice"),
        (2, "bob"),
    ]
    assert {j["review_state"] for j in judgments if j["round"] == 2} == {"approved"}
    assert {j["model_a"] for j in judgments} | {j["model_b"] for j in judgments} == {
        "model-x-2026-10",
        "model-y-2026-09",
    }
    # The better output (the one that keeps the package from pip's options) won every vote.
    assert {j["model_a"] if j["verdict"] == "A" else j["model_b"] for j in judgments} == {"model-x-2026-10"}
    # All its state is in its directory, which git ignores; nothing it started still runs.
    assert git(project, "status", "--porcelain", "--ignored=no") == ""
    assert sorted(path.name for path in project.iterdir()) == [".git", ".tandem-demo", "README.md"]
    assert git(ROOT, "status", "--porcelain") == tandem_status
    assert processes_under(sandbox) == []


def test_sandbox_runs_until_sigterm_and_takes_raters_actions_from_the_cli(tmp_path):
    directory = tmp_path / "sandbox"
    log = tmp_path / "sandbox.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [TANDEM, "sandbox", "--dir", str(directory)], cwd=tmp_path, env=ENV, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        # Its next steps are printed once it is up, after its state file is written: waited for
        # too (reading the log as the state file appeared lost that race on a busy machine).
        wait_for(
            lambda: "tandem sandbox comment 1 A" in log.read_text() or process.poll() is not None,
            lambda: f"the sandbox to start: {log.read_text()}",
            timeout=300,
        )
        assert process.poll() is None, log.read_text()
        assert (directory / "sandbox.json").exists()
        env = ENV | {"TANDEM_ENV_FILE": str(directory / ".env")}

        def tandem(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([TANDEM, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

        task_file = tmp_path / "task.yml"
        task_file.write_text(yaml.safe_dump(scenario.DEMO_TASK))
        assert tandem("task", "submit", str(task_file)).stdout.strip() == "1"
        wait_for(
            lambda: len(json.loads(tandem("task", "show", "1").stdout).get("pull_requests") or {}) == 2,
            "both PRs to open",
        )

        comment = tandem("sandbox", "comment", "1", "A", "/prefer A clearly", "--as", "alice", "--dir", str(directory))
        assert comment.returncode == 0, comment.stderr
        assert "/evals-org/mlflow/pull/" in comment.stdout

        def alices_vote() -> list[tuple]:
            exported = tandem("export", "--format", "jsonl", "-").stdout.splitlines()
            return [
                (r["verdict"], r["strength"])
                for r in map(json.loads, exported)
                if r["kind"] == "judgment" and r["rater_login"] == "alice"
            ]

        assert wait_for(alices_vote, "alice's vote to be recorded") == [("A", "clearly")]

        line = tandem(
            "sandbox",
            "line-comment",
            "1",
            "B",
            "src/app.py",
            "1",
            "Still a shell here.",
            "--as",
            "bob",
            "--dir",
            str(directory),
        )
        assert line.returncode == 0, line.stderr
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "app.py").write_text("print('edited by a rater')\n")
        pushed = tandem("sandbox", "push", "1", "A", "src/app.py", "--as", "alice", "--dir", str(directory))
        assert pushed.returncode == 0, pushed.stderr
        sha, branch = pushed.stdout.split()[1], pushed.stdout.split()[-1]
        [mirror] = (directory / "github").rglob("mlflow.git")
        assert git(mirror, "rev-parse", f"refs/heads/{branch}").strip() == sha
        assert git(mirror, "show", f"{sha}:src/app.py") == "print('edited by a rater')\n"
        stranger = tandem("sandbox", "comment", "1", "A", "/prefer B", "--as", "mallory", "--dir", str(directory))
        assert stranger.returncode == 1
        assert stranger.stderr.startswith("error: ") and "mallory" in stranger.stderr
        assert "Traceback" not in stranger.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=120)
    assert status == 0, log.read_text()
    assert "stopping" in log.read_text()
    assert not (directory / "sandbox.json").exists()
    assert processes_under(directory) == []


def test_the_wheel_ships_the_sandboxs_description_and_its_notice(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [wheel] = tmp_path.glob("tandem-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "tandem/sandbox/github/openapi.json.gz",
        "tandem/sandbox/github/NOTICE",
        "tandem/sandbox/github/handlers/pulls.py",
    } <= names
    assert not any(name.startswith("tests/") for name in names)


def test_the_sandboxs_redis_refuses_whoever_lacks_its_password(tmp_path):
    """Whoever can queue a job runs code as the worker's user (a job names its function): the
    sandbox's Redis, on loopback where every local user reaches it, asks for a password that is
    in no process's arguments."""
    import redis

    from tandem.sandbox.processes import PrivateRedis

    private = PrivateRedis(tmp_path / "redis")
    try:
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=private.port).ping()
        assert redis.Redis.from_url(private.url).ping()
        arguments = Path(f"/proc/{private.process.pid}/cmdline").read_bytes().decode()
        assert private.password not in arguments and private.password not in private.address
        assert oct((tmp_path / "redis" / "redis.conf").stat().st_mode & 0o777) == "0o600"
    finally:
        private.stop()
