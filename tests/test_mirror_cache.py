"""The mirror's clone cache survives a worker killed at any git step of its first opening.

The opening runs in a separate process whose `git` is a wrapper (first on its PATH) that records
each call and, at the call the test names, SIGKILLs the worker's whole process group: as soon as
git has started talking to the mirror (the clone's directory exists, without branches), or once
git has finished but before the worker learns it. A fresh run must then open the pair, and the
cache must follow the mirror afterwards (not keep a stale base).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tandem.domain import pairs, tasks
from tandem.domain.task_spec import parse_task
from tandem.infra.gitops import MirrorClone
from tandem.infra.models import Task
from tandem.infra.services import Services
from tandem.infra.settings import Settings
from tests import github_views as views

REPO = "evals-org/mlflow"
# Calls that talk to the mirror: killed mid-transfer as well as at their end.
TRANSFERS = {"clone", "fetch", "push", "ls-remote"}

WRAPPER = """#!/bin/sh
# git as a doomed worker sees it: each call is logged in ./calls; at the call named in ./kill
# ("N transfer|end"), the worker's whole process group dies (worker, this script and git).
spy=$(dirname "$0")
echo "$*" >> "$spy/calls"
n=$(wc -l < "$spy/calls")
read -r at when < "$spy/kill"
[ "$n" = "$at" ] || exec {git} "$@"
if [ "$when" = end ]; then
    {git} "$@"
else
    rm -f "$spy/trace"
    GIT_TRACE2_EVENT="$spy/trace" {git} "$@" &
    until grep -qE '"event":"(child_start|exit)"' "$spy/trace" 2>/dev/null; do sleep 0.01; done
fi
kill -KILL 0
"""

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # git's matter, not storage's


def _worker(settings: Settings, path: str, task_id: int) -> None:
    """A worker process: its own session (so its group can be killed alone), the spy's git."""
    os.setsid()
    os.environ["PATH"] = path
    pairs.open_pair(Services.from_settings(settings), task_id)


@pytest.fixture(scope="module")
def worker_processes():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


class Spy:
    def __init__(self, directory: Path):
        self.dir = directory
        directory.mkdir()
        script = directory / "git"
        script.write_text(WRAPPER.replace("{git}", shutil.which("git")))
        script.chmod(0o755)
        self.path = f"{directory}{os.pathsep}{os.environ['PATH']}"

    def run(self, processes, settings: Settings, task_id: int, kill: tuple[int, str] | None = None) -> int:
        (self.dir / "calls").write_text("")
        (self.dir / "kill").write_text(f"{kill[0]} {kill[1]}\n" if kill else "0 never\n")
        worker = processes.Process(target=_worker, args=(settings, self.path, task_id))
        worker.start()
        worker.join(120)
        return worker.exitcode

    def calls(self) -> list[str]:
        """Each call's git command (after git's own `-c` options)."""
        names = []
        for line in (self.dir / "calls").read_text().splitlines():
            words = line.split()
            while words[0] == "-c":
                words = words[2:]
            names.append(words[0])
        return names


def new_task(services, blinding, number: int) -> int:
    data = {
        "repo": REPO,
        "base": "main",
        "prompt": "Fix it.",
        "outputs": [
            {"model": "model-x-2026-10", "files": {"a.txt": f"a{number}\n"}},
            {"model": "model-y-2026-09", "files": {"b.txt": f"b{number}\n", "src/obsolete.py": None}},
        ],
        "metadata": {"source": "crash-suite"},
    }
    blinding.add_task(data)
    with services.storage.transaction() as session:
        return tasks.create_task(session, parse_task(data), "test").id


def test_a_worker_killed_at_any_git_step_of_a_first_opening_leaves_a_cache_that_works(
    github, services, blinding, tmp_path, worker_processes
):
    spy = Spy(tmp_path / "spy")
    mirror = github.repo(REPO)
    settings = services.settings
    settings.git_cache_dir = tmp_path / "clean"
    assert spy.run(worker_processes, settings, new_task(services, blinding, 0)) == 0
    calls = spy.calls()
    assert calls[0] == "clone" and "push" in calls, calls
    kills = [
        (n, when)
        for n, name in enumerate(calls, 1)
        for when in ("transfer", "end")
        if when == "end" or name in TRANSFERS
    ]

    for number, (at, when) in enumerate(kills, 1):
        step = f"{calls[at - 1]} (call {at}), killed at its {when}"
        settings.git_cache_dir = tmp_path / f"cache-{number}"  # a first opening each time
        task_id = new_task(services, blinding, number)
        assert spy.run(worker_processes, settings, task_id, kill=(at, when)) == -signal.SIGKILL, step
        assert len(spy.calls()) == at, step

        # A fresh run opens the pair, on the mirror's main.
        assert pairs.open_pair(services, task_id) == "open", step
        with services.storage.transaction() as session:
            task = session.get(Task, task_id)
            heads = {side.head_sha for side in task.pair.sides}
            assert task.base_sha == mirror.git.ref_sha("refs/heads/main"), step
        titles = sorted(p["title"] for p in views.pulls(github, REPO) if p["head_sha"] in heads)
        assert titles == [f"Task {task_id} · Option A", f"Task {task_id} · Option B"], step

        # And the cache follows the mirror: the next task builds on the new main.
        moved = github.commit_files(REPO, {"moved.txt": f"{number}\n"})
        clone = MirrorClone(settings.git_cache_dir, str(mirror.id), mirror.clone_url)
        with clone.locked():
            clone.fetch()
            assert clone.resolve("main")[0] == moved, step


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize(
    "left_by",
    [
        "an older Tandem killed before the refspec",
        "an older Tandem killed before the branches",
        "a git killed while updating a branch",
    ],
)
def test_a_cache_left_broken_is_repaired(github, tmp_path, left_by):
    mirror = github.repo(REPO)
    clone = MirrorClone(tmp_path / "cache", str(mirror.id), mirror.clone_url)
    if left_by.startswith("an older Tandem"):
        clone.path.parent.mkdir()
        git("clone", "-q", "--bare", "--filter=blob:none", mirror.clone_url, str(clone.path), cwd=tmp_path)
        if left_by.endswith("branches"):
            git("update-ref", "-d", "refs/heads/main", cwd=clone.path)
    else:
        with clone.locked():
            clone.fetch()
        (clone.path / "refs" / "heads" / "main.lock").write_text("")
    moved = github.commit_files(REPO, {"moved.txt": "1\n"})
    with clone.locked():
        clone.fetch()
        assert clone.resolve("main")[0] == moved
    assert git("config", "--get-all", "remote.origin.fetch", cwd=clone.path) == "+refs/heads/*:refs/heads/*"
