"""How many GitHub API requests, and how long, it takes to open a pair, by the size of the diff.

Runs the GitHub emulator in this process, a mirror with enough files, and opens pairs whose
outputs change 1, 10, 100 and 1,000 files (one output as a git patch, the other as whole
files), through the same code a worker runs. Prints, per size: API requests per pair (REST and
GraphQL; all, and writes), git's share is not the API's and is not counted; seconds per pair. The
first pair of a run also fetches an installation token and the config (the organization's and the
repository's tandem.yml, in one GraphQL query, which is no write); later pairs find both cached, so
the first pair is shown separately. Git finds the
mirror at GitHub's web address, so no request asks where it is. Each task asks two raters for reviews.

    .venv/bin/python bench/pair_api_calls.py [--sizes 1 10 100 1000] [--pairs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).parents[1]))

from tandem.domain import pairs, tasks  # noqa: E402
from tandem.infra.db import Base, Storage  # noqa: E402
from tandem.infra.github import GitHubApp  # noqa: E402
from tandem.infra.models import Installation, Repository  # noqa: E402
from tandem.infra.queue import connect  # noqa: E402
from tandem.infra.services import Services  # noqa: E402
from tandem.infra.settings import Settings  # noqa: E402
from tandem.domain.task_spec import parse_task  # noqa: E402
from tandem.sandbox.github import GitHubEmulator  # noqa: E402

WRITES = {"POST", "PATCH", "PUT", "DELETE"}


def make_patch(clone_url: str, files: int, round_: int, scratch: Path) -> str:
    work = scratch / f"author-{files}-{round_}"
    subprocess.run(["git", "clone", "-q", clone_url, str(work)], check=True)
    for number in range(files):
        (work / "src" / f"module_{number}.py").write_text(f"VALUE = {number}\nROUND = {round_}\n")
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    return subprocess.run(["git", "diff", "--cached", "--binary"], cwd=work, check=True, capture_output=True, text=True).stdout


def start_world(scratch: Path, files: dict[str, str], redis_url: str, *, secondary_limits=None,
                budget_windows: tuple[float, float] = (60.0, 3600.0), **settings):
    """The emulator with a mirror evals-org/mirror holding `files` and two raters, Tandem installed
    on it, and Tandem's services (SQLite in `scratch`, Redis at `redis_url`, flushed).
    Returns (emulator, services, repository)."""
    emu = GitHubEmulator(root=scratch / "github", installation_rate_limit=10**9, secondary_limits=secondary_limits)
    emu.start()
    app = emu.register_app(slug="tandem", name="Tandem", webhook_secret="bench")
    emu.create_org("evals-org")
    for login in ("rater-one", "rater-two"):
        emu.create_user(login)
        emu.add_org_member("evals-org", login)
    repo = emu.create_repository("evals-org", "mirror", files=files | {".github/tandem.yml": "mirror: true\n"})
    installation = emu.install_app("evals-org", repositories="all")
    config = Settings(
        _env_file=None, app_id=app.id, private_key=SecretStr(app.private_key_pem), webhook_secret="bench",
        github_api_url=emu.url, database_url=f"sqlite:///{scratch}/bench.db", redis_url=redis_url,
        git_cache_dir=scratch / "git-cache", **settings,
    )
    redis = connect(config.redis_url)
    redis.flushdb()
    github = GitHubApp(config, redis, budget_windows=budget_windows)
    services = Services(config, Storage.from_url(config.database_url), redis, github)
    Base.metadata.create_all(services.storage.engine)
    with services.storage.transaction() as session:
        session.add(Installation(id=installation.id, account_login="evals-org", account_id=1, account_type="Organization"))
        session.add(Repository(id=repo.id, installation_id=installation.id, full_name="evals-org/mirror"))
    return emu, services, repo


def unthrottled_world(scratch: Path, sizes: list[int], redis_url: str):
    """start_world with a module per changed file of the largest size, and no write budget."""
    files = {f"src/module_{n}.py": f"VALUE = {n}\n" for n in range(max(sizes))}
    return start_world(scratch, files, redis_url, write_spacing_seconds=0, writes_per_minute=10**6, writes_per_hour=10**6)


def new_task(services: Services, outputs: list[dict]) -> int:
    spec = parse_task({
        "repo": "evals-org/mirror", "base": "main", "prompt": "Change every module.",
        "outputs": outputs, "raters": ["rater-one", "rater-two"],
    })
    with services.storage.transaction() as session:
        return tasks.create_task(session, spec, "bench").id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--pairs", type=int, default=3, help="pairs per size")
    parser.add_argument("--redis-url", required=True, help="a Redis database it may empty, not a live one")
    parser.add_argument("--list", action="store_true", help="print the first pair's requests")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        emu, services, repo = unthrottled_world(scratch, args.sizes, args.redis_url)
        redis = services.redis

        print(f"{'files':>6} {'pair':>6} {'requests':>9} {'writes':>7} {'seconds':>8}")
        summary = []
        first = True
        for size in args.sizes:
            seconds, counts = [], []
            for round_ in range(args.pairs):
                patch = make_patch(repo.clone_url, size, round_, scratch)
                whole = {f"src/module_{n}.py": f"VALUE = {n}  # whole file, round {round_}\n" for n in range(size)}
                task_id = new_task(services, [{"model": "model-x", "patch": patch}, {"model": "model-y", "files": whole}])
                emu.reset_requests()
                started = time.perf_counter()
                assert pairs.open_pair(services, task_id) == "open"
                elapsed = time.perf_counter() - started
                requests = emu.requests
                writes = sum(r.method in WRITES and not r.path.endswith(("/access_tokens", "/graphql")) for r in requests)
                label = "first" if first else "warm"
                print(f"{size:>6} {label:>6} {len(requests):>9} {writes:>7} {elapsed:>8.2f}")
                if first and args.list:
                    for request in requests:
                        print(f"{'':>15}{request.method} {request.path} {request.status}")
                if not first:
                    seconds.append(elapsed)
                    counts.append((len(requests), writes))
                first = False
            summary.append((size, counts, seconds))
        print("\nper pair, warm (median):")
        for size, counts, seconds in summary:
            if counts:
                print(
                    f"  {size:>5} changed files: {statistics.median(c[0] for c in counts):.0f} requests "
                    f"({statistics.median(c[1] for c in counts):.0f} writes), {statistics.median(seconds):.2f} s"
                )
        emu.stop()
        redis.flushdb()


if __name__ == "__main__":
    main()
