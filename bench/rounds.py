"""How many GitHub REST requests, and how long, it takes to put a round on both PRs, by the size
of the diff.

Runs the GitHub emulator in this process (the setup of bench/pair_api_calls.py), opens a pair per
size, starts its round 2 and submits outputs that change 1, 10, 100 and 1,000 files (one model's
as a git patch on its head, the other's as whole files), through the same code the API and a
worker run: the submission's checks (git only) and the apply job. Prints, per size, REST requests
per round (all, and writes; git is not REST and is not counted) and seconds per round, submission
and apply together. The request count must not grow with the diff.

    .venv/bin/python bench/rounds.py [--sizes 1 10 100 1000] [--rounds 3] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench.pair_api_calls import WRITES, new_task, unthrottled_world  # noqa: E402
from tandem.domain import pairs, rounds  # noqa: E402
from tandem.infra.models import Round, Task  # noqa: E402
from tandem.domain.rounds import apply, lifecycle  # noqa: E402
from tandem.domain.task_spec import OutputSpec  # noqa: E402


def patch_on(clone_url: str, branch: str, files: int, scratch: Path) -> str:
    """A patch changing `files` modules, on the branch's head."""
    work = scratch / f"author-{branch.replace('/', '-')}"
    subprocess.run(["git", "clone", "-q", "--branch", branch, clone_url, str(work)], check=True)
    for number in range(files):
        (work / "src" / f"module_{number}.py").write_text(f"VALUE = {number}\nROUND = 2\n")
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    return subprocess.run(["git", "diff", "--cached", "--binary"], cwd=work, check=True, capture_output=True, text=True).stdout


def open_round_2(services, task_id: int) -> dict[str, str]:
    """Open the task's pair and start its round 2, as /followup does; returns {model: branch}."""
    assert pairs.open_pair(services, task_id) == "open"
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        second = Round(number=2, prompt="Now add a test for every module.", author_login="rater-one")
        task.rounds.append(second)
        session.flush()
        lifecycle.await_outputs(session, second, timeout=None)
        return {side.output.model: side.branch for side in task.pair.sides}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per size")
    parser.add_argument("--redis-url", required=True, help="a Redis database it may empty, not a live one")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        emu, services, repo = unthrottled_world(scratch, args.sizes, args.redis_url)
        print(f"{'files':>6} {'round':>6} {'requests':>9} {'writes':>7} {'seconds':>8}")
        summary = []
        for size in args.sizes:
            seconds, counts = [], []
            for attempt in range(args.rounds):
                task_id = new_task(services, [
                    {"model": "model-x", "files": {"src/module_0.py": f"VALUE = 'x{attempt}'\n"}},
                    {"model": "model-y", "files": {"src/module_0.py": f"VALUE = 'y{attempt}'\n"}},
                ])
                branches = open_round_2(services, task_id)
                outputs = [
                    OutputSpec(model="model-x", patch=patch_on(repo.clone_url, branches["model-x"], size, scratch)),
                    OutputSpec(model="model-y", files={f"src/module_{n}.py": f"VALUE = {n}  # y\n" for n in range(size)}),
                ]
                emu.reset_requests()
                started = time.perf_counter()
                assert rounds.submit_outputs(services, task_id, 2, outputs, submitted_by="bench") == "accepted"
                assert apply.apply_round(services, task_id, 2) == "open"
                elapsed = time.perf_counter() - started
                requests = emu.requests
                writes = sum(r.method in WRITES and not r.path.endswith("/access_tokens") for r in requests)
                print(f"{size:>6} {attempt + 1:>6} {len(requests):>9} {writes:>7} {elapsed:>8.2f}")
                seconds.append(elapsed)
                counts.append((len(requests), writes))
            summary.append((size, counts, seconds))
        print("\nper round (median):")
        for size, counts, seconds in summary:
            print(
                f"  {size:>5} changed files: {statistics.median(c[0] for c in counts):.0f} REST requests "
                f"({statistics.median(c[1] for c in counts):.0f} writes), {statistics.median(seconds):.2f} s"
            )
        emu.stop()
        services.redis.flushdb()


if __name__ == "__main__":
    main()
