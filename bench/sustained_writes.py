"""GitHub's refusals, and pairs per minute, when pairs are opened back to back under Tandem's write budget.

Runs the GitHub emulator in this process enforcing GitHub's secondary limits per installation
(80 content-creating requests a minute, 500 an hour, 900 points a minute: see
tandem/sandbox/github/secondary.py) and opens --pairs pairs one after another through the code a
worker runs, with Tandem's default budget (or the --writes-per-* given). A run that is told to
wait (RateLimited) runs again once the wait is over, as the scheduler would run the rescheduled
job. Prints GitHub's refusals (403/429 answers: expect 0), the writes, and pairs per minute.

--time-scale compresses GitHub's clock, and Tandem's budget with it (spacing, windows, the
longest wait slept in place): at 0.25 GitHub's minute lasts 15 s. At 1 (real time), 40 pairs
take about 5.5 minutes. Each pair makes 8 writes (2 PRs, 2 label updates, 2 review requests,
2 check runs), so the default budget (60 a minute, 450 an hour) opens at most 7.5 pairs a
minute, and 56 in any hour.

    .venv/bin/python bench/sustained_writes.py [--pairs 40] [--time-scale 1] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench.pair_api_calls import WRITES, new_task, start_world  # noqa: E402
from tandem.domain import pairs  # noqa: E402
from tandem.infra.errors import RateLimited  # noqa: E402
from tandem.infra.settings import Settings  # noqa: E402
from tandem.sandbox.github import SecondaryLimits  # noqa: E402


def open_when_allowed(services, task_id: int) -> int:
    """Open the pair as a worker would; returns how many times it was told to wait."""
    waits = 0
    while True:
        try:
            status = pairs.open_pair(services, task_id)
        except RateLimited as exc:
            waits += 1
            time.sleep(exc.seconds)
            continue
        if status != "open":
            raise SystemExit(f"task {task_id}: {status}")
        return waits


def main() -> None:
    default = {name: field.default for name, field in Settings.model_fields.items()}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--time-scale", type=float, default=1.0, help="GitHub's seconds per real second, inverted")
    parser.add_argument("--writes-per-minute", type=int, default=default["writes_per_minute"])
    parser.add_argument("--writes-per-hour", type=int, default=default["writes_per_hour"])
    parser.add_argument("--redis-url", required=True, help="a Redis database it may empty, not a live one")
    args = parser.parse_args()
    scale = args.time_scale
    limits = SecondaryLimits(minute=60 * scale, hour=3600 * scale)

    with tempfile.TemporaryDirectory() as directory:
        emu, services, _repo = start_world(
            Path(directory), {"src/app.py": "VALUE = 0\n"}, args.redis_url,
            secondary_limits=limits, budget_windows=(limits.minute, limits.hour),
            write_spacing_seconds=default["write_spacing_seconds"] * scale,
            writes_per_minute=args.writes_per_minute, writes_per_hour=args.writes_per_hour,
            max_inline_wait_seconds=default["max_inline_wait_seconds"] * scale,
        )
        print(f"budget: {args.writes_per_minute}/min, {args.writes_per_hour}/h, "
              f"{default['write_spacing_seconds']:.0f} s apart; GitHub: {limits.writes_per_minute}/min, "
              f"{limits.writes_per_hour}/h; time scale {scale:g}")
        print(f"{'pairs':>6} {'writes':>7} {'refused':>8} {'waits':>6} {'GitHub min':>11} {'pairs/min':>10}")
        started, waits = time.perf_counter(), 0
        for number in range(1, args.pairs + 1):
            task_id = new_task(services, [
                {"model": "model-x", "files": {"src/app.py": f"X = {number}\n"}},
                {"model": "model-y", "files": {"src/app.py": f"Y = {number}\n"}},
            ])
            waits += open_when_allowed(services, task_id)
            if number % 10 == 0 or number == args.pairs:
                minutes = (time.perf_counter() - started) / scale / 60
                requests = emu.requests
                writes = sum(r.method in WRITES and not r.path.endswith("/access_tokens") for r in requests)
                refused = sum(r.status in (403, 429) for r in requests)
                print(f"{number:>6} {writes:>7} {refused:>8} {waits:>6} {minutes:>11.1f} {number / minutes:>10.1f}")
        emu.stop()
        services.redis.flushdb()


if __name__ == "__main__":
    main()
