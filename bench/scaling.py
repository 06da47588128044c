"""Judgment throughput with 1, 2 and 4 `tandem worker` processes, on PostgreSQL, against the
GitHub emulator; and where they contend.

The set-up is bench/judgments.py's (`tandem serve`, workers and PostgreSQL as the real thing, the
emulator in this process). Raters' `/prefer` votes on --pairs pairs are made on the emulator;
then N workers start, and once each sends its heartbeat the votes are posted to `tandem serve`
and drained. Per worker count it prints judgments/s, and what it sampled meanwhile: each
process's CPU, and the PostgreSQL wait events of
the workers' sessions (lock waits mean they queue on one another).

    .venv/bin/python bench/scaling.py --redis-url redis://127.0.0.1:PORT/12 [--workers 1 2 4] [--votes 240] [--pairs 4]
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))

from judgments import TANDEM, Bench, wait_for  # noqa: E402

from tandem.infra import liveness, queue  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


class Sampler(threading.Thread):
    """PostgreSQL's wait events of the bench schema's active sessions, every 0.2 s."""

    def __init__(self, bench: Bench):
        super().__init__(daemon=True)
        self.bench, self.done, self.waits, self.samples = bench, threading.Event(), collections.Counter(), 0

    def run(self) -> None:
        query = text(
            "SELECT coalesce(wait_event_type || ':' || wait_event, 'running') FROM pg_stat_activity "
            "WHERE state = 'active' AND application_name = :name"
        )
        with self.bench.admin.connect() as connection:
            while not self.done.wait(0.2):
                self.samples += 1
                self.waits.update(connection.execute(query, {"name": self.bench.env["PGAPPNAME"]}).scalars())


def drain(bench: Bench, workers: int, pairs: list[int], votes: int, offset: int) -> int:
    """Accept `votes` votes spread over the pairs with no worker running, then time `workers`
    workers draining them. Returns the new offset into the raters."""
    per_pair = votes // len(pairs)
    # Interleaved, as raters working at once on different pairs would send them (one pair's votes
    # in a row queue the workers on that pair's rows).
    bodies = [body for votes_at_once in zip(*(bench.comments(number, per_pair, offset) for number in pairs))
              for body in votes_at_once]
    before = bench.judgments()
    processes = [subprocess.Popen([TANDEM, "worker"], env=bench.env, cwd=bench.scratch) for _ in range(workers)]
    sampler = Sampler(bench)
    try:
        # Timed from the first vote posted to the last judgment, once every worker beats: start-up
        # (seconds of imports per process, on a loaded machine) is no part of the throughput.
        redis = queue.connect(bench.env["TANDEM_REDIS_URL"])
        wait_for(lambda: sum(beat.alive for beat in liveness.worker_beats(redis)) >= workers, f"{workers} workers")
        sampler.start()
        cpu_before = {p.pid: cpu_seconds(p.pid) for p in processes} | {
            "serve": cpu_seconds(bench.server.pid), "bench (emulator)": time.process_time()}
        started = time.perf_counter()
        for body in bodies:
            bench.post(body)
        wait_for(lambda: bench.judgments() >= before + len(bodies), f"{len(bodies)} judgments", timeout=1800)
        elapsed = time.perf_counter() - started
        cpu = {f"worker {n}": cpu_seconds(p.pid) - cpu_before[p.pid] for n, p in enumerate(processes, 1)}
        cpu["serve"] = cpu_seconds(bench.server.pid) - cpu_before["serve"]
        cpu["bench (emulator)"] = time.process_time() - cpu_before["bench (emulator)"]
    finally:  # a worker left behind would take the next run's jobs
        sampler.done.set()
        if sampler.is_alive():
            sampler.join()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=120)
    print(f"{workers} worker(s): {len(bodies)} judgments in {elapsed:.1f} s = {len(bodies) / elapsed:.1f} judgments/s "
          f"(posting included, start-up not)")
    print("  CPU s: " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items())
          + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    shares = ", ".join(f"{event} {count / max(sampler.samples, 1):.2f}" for event, count in sampler.waits.most_common(5))
    print(f"  PostgreSQL active sessions per sample, by wait: {shares or 'none seen'}")
    return offset + per_pair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--votes", type=int, default=240, help="votes drained per worker count")
    parser.add_argument("--pairs", type=int, default=4, help="pairs the votes are spread over")
    parser.add_argument("--redis-url", required=True, help="a Redis database this may empty")
    args = parser.parse_args()

    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    raters = len(args.workers) * (args.votes // args.pairs)
    with tempfile.TemporaryDirectory() as directory:
        bench = Bench(Path(directory), raters, args.redis_url)
        # The workers' sessions, told apart from everyone else's on a shared PostgreSQL (libpq reads it).
        bench.env["PGAPPNAME"] = f"tandem-{bench.schema}"
        try:
            bench.start_worker()
            pairs = [bench.open_pair()] + [bench.submit_task() for _ in range(args.pairs - 1)]
            bench.stop_worker()
            offset = 0
            for workers in args.workers:
                offset = drain(bench, workers, pairs, args.votes, offset)
        finally:
            bench.close()
    redis.Redis.from_url(args.redis_url).flushdb()


if __name__ == "__main__":
    main()
