"""The per-installation write budget, shared through Redis by every worker."""

from __future__ import annotations

import time

import httpx
import pytest

from tandem.infra.budget import WriteBudget, is_write
from tandem.infra.errors import RateLimited
from tandem.infra.github import GitHubApp
from tandem.infra.settings import Settings
from tandem.sandbox.github import SecondaryLimits


def budget(redis_conn, **overrides) -> WriteBudget:
    values = {"spacing": 1.0, "per_minute": 80, "per_hour": 500, "max_wait": 10_000.0} | overrides
    return WriteBudget(redis_conn, installation_id=1, **values)


def test_writes_are_spaced_by_the_spacing(redis_conn):
    shared = budget(redis_conn)
    other_worker = budget(redis_conn)  # a second process, same installation
    waits = [shared.reserve(), other_worker.reserve(), shared.reserve()]
    assert waits[0] == pytest.approx(0, abs=0.05)
    assert waits[1] == pytest.approx(1, abs=0.05)
    assert waits[2] == pytest.approx(2, abs=0.05)


def test_the_per_minute_limit_pushes_the_next_write_a_minute_past_the_oldest(redis_conn):
    limited = budget(redis_conn, spacing=0, per_minute=3)
    waits = [limited.reserve() for _ in range(4)]
    assert waits[:3] == pytest.approx([0, 0, 0], abs=0.05)
    assert waits[3] == pytest.approx(60, abs=0.05)


def test_the_per_hour_limit(redis_conn):
    limited = budget(redis_conn, spacing=0, per_minute=1000, per_hour=5)
    waits = [limited.reserve() for _ in range(6)]
    assert waits[5] == pytest.approx(3600, abs=0.05)


def test_a_wait_longer_than_max_wait_gives_the_slot_back_and_raises(redis_conn):
    limited = budget(redis_conn, spacing=0, per_minute=1, max_wait=5)
    limited.reserve()
    with pytest.raises(RateLimited) as raised:
        limited.reserve()
    assert raised.value.seconds == pytest.approx(60, abs=0.05)
    assert redis_conn.zcard("tandem:writes:1") == 1


def test_installations_have_separate_budgets(redis_conn):
    first = budget(redis_conn, spacing=0, per_minute=1, max_wait=5)
    second = WriteBudget(redis_conn, installation_id=2, spacing=0, per_minute=1, per_hour=500, max_wait=5)
    first.reserve()
    assert second.reserve() == pytest.approx(0, abs=0.05)


def test_only_content_creating_requests_spend_the_budget(redis_conn):
    limited = budget(redis_conn, spacing=0, per_minute=1, max_wait=5)
    for method in ("GET", "HEAD"):
        with limited.acquire(httpx.Request(method, "https://api.github.com/repos/o/r")):
            pass
    with limited.acquire(httpx.Request("POST", "https://api.github.com/app/installations/1/access_tokens")):
        pass
    graphql = "https://github.example.com/api/graphql"  # Enterprise Server's address of it
    with limited.acquire(httpx.Request("POST", graphql, json={"query": "query($p: String!) { viewer { login } }"})):
        pass
    assert redis_conn.zcard("tandem:writes:1") == 0
    with limited.acquire(httpx.Request("POST", "https://api.github.com/repos/o/r/pulls")):
        pass
    assert redis_conn.zcard("tandem:writes:1") == 1
    assert is_write(httpx.Request("POST", graphql, json={"query": " mutation { addStar }"}))


def test_github_saying_wait_holds_the_installation_for_every_process(redis_conn):
    one, other = budget(redis_conn, spacing=0, max_wait=5), budget(redis_conn, spacing=0, max_wait=5)
    write = httpx.Request("POST", "https://api.github.com/repos/o/r/pulls")
    read = httpx.Request("GET", "https://api.github.com/repos/o/r")
    one.hold(read, 0, primary=True)  # the primary limit's reset has passed already: no hold
    assert other.reserve() == pytest.approx(0, abs=0.05)
    one.hold(write, 30, primary=False)  # a secondary limit: writes wait, reads go on
    with pytest.raises(RateLimited) as raised:
        other.reserve()
    assert raised.value.seconds == pytest.approx(30, abs=0.5)
    with other.acquire(read):
        pass
    one.hold(write, 5, primary=False)  # a shorter wait does not cut a longer one short
    with pytest.raises(RateLimited) as raised:
        other.reserve()
    assert raised.value.seconds == pytest.approx(30, abs=0.5)
    one.hold(read, 60, primary=True)  # the primary limit: everything waits
    for request in (read, write):
        with pytest.raises(RateLimited) as raised, other.acquire(request):
            pass
        assert raised.value.seconds == pytest.approx(60, abs=0.5)
    # Minting a token is the app's request, not the installation's: its limits are not held here.
    WriteBudget(redis_conn, installation_id=2, spacing=0, per_minute=1, per_hour=1, max_wait=5).hold(
        httpx.Request("POST", "https://api.github.com/app/installations/2/access_tokens"), 60, primary=True
    )
    assert not redis_conn.exists("tandem:requests:2:held")


# GitHub's time, compressed: its minute lasts 0.15 s here, and its hour 9 s.
SCALE = 1 / 400
# How much later than its slot a write may reach GitHub (GitHub's seconds): a slow connection.
LATE = 10


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # GitHub's matter, not storage's
def test_under_sustained_load_the_default_budget_draws_no_refusal_from_github(github, services):
    """Writes one after another, past an hour's worth, with every tenth one reaching GitHub late,
    against GitHub's secondary limits: with Tandem's default budget, GitHub refuses none."""
    github.secondary_limits = limits = SecondaryLimits(minute=60 * SCALE, hour=3600 * SCALE)
    default = {name: field.default for name, field in Settings.model_fields.items()}
    settings = services.settings.model_copy(
        update={
            "write_spacing_seconds": default["write_spacing_seconds"] * SCALE,
            "writes_per_minute": default["writes_per_minute"],
            "writes_per_hour": default["writes_per_hour"],
            "max_inline_wait_seconds": default["max_inline_wait_seconds"] * SCALE,
        }
    )
    app = GitHubApp(settings, services.redis, budget_windows=(limits.minute, limits.hour))
    client = app.as_installation(github.installation.id)
    client.rest.issues.create_label("evals-org", "mlflow", name="load", color="ededed")
    github.reset_requests()
    written = 0
    with client:  # one connection for all (as fast as the budget allows)
        while written < limits.writes_per_hour + 50:
            if written % 10 == 0:
                github.faults.slow_requests(LATE * SCALE, method="PATCH")
            try:
                client.rest.issues.update_label("evals-org", "mlflow", "load", description=f"write {written}")
            except RateLimited as exc:  # a job waits in the scheduler, then tries again
                time.sleep(exc.seconds)
                continue
            written += 1
    refused = [f"{r.method} {r.path}: {r.status}" for r in github.requests if r.status in (403, 429)]
    assert refused == []
