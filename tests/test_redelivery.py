"""Recovering webhooks that failed while Tandem was down: `tandem redeliver` and the periodic job
ask GitHub (the emulator) to redeliver what Tandem never processed, once."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select
from typer.testing import CliRunner

from cli.main import cli
from tandem.infra import job_names, logs, queue, redelivery
from tandem.infra.db import Storage
from tandem.infra.github import GitHubApp
from tandem.infra.models import Judgment, ProcessedDelivery
from tandem.infra.services import Services
from tests.conftest import run_jobs, settle
from workers import schedule

REPO = "evals-org/mlflow"
DEAD = "http://127.0.0.1:9/webhooks/github"  # nothing listens there: Tandem is down
TANDEM = str(Path(sys.executable).with_name("tandem"))


def tandem_url(github) -> str:
    [app] = github.core.state.apps.values()
    return app.webhook_url


def judgments(services) -> list[tuple[str, str]]:
    with services.storage.transaction() as session:
        return [(j.rater_login, j.verdict) for j in session.scalars(select(Judgment))]


def attempts(github, guid: str) -> list:
    return [d for d in github.deliveries if d.guid == guid]


def comment_while_down(github, services, pair, body="/prefer A\nCleaner.") -> str:
    """A rater comments while Tandem is down; returns the failed delivery's GUID."""
    up = tandem_url(github)
    github.set_webhook(DEAD)
    github.as_user("rater-one").comment(REPO, pair["A"], body)
    settle(github, services)
    github.set_webhook(up)
    failed = github.deliveries[-1]
    assert failed.event == "issue_comment" and not failed.ok and failed.status_code == 0
    return failed.guid


def test_a_comment_made_while_tandem_was_down_is_recorded_once(github, services, pair):
    guid = comment_while_down(github, services, pair)
    assert judgments(services) == []

    report = redelivery.redeliver_failed(services, timedelta(hours=1))
    assert report.redelivered == [guid]
    settle(github, services)
    assert judgments(services) == [("rater-one", "A")]
    assert [a.ok for a in attempts(github, guid)] == [False, True]

    again = redelivery.redeliver_failed(services, timedelta(hours=1))
    assert again.redelivered == []
    assert "nothing to redeliver" in again.lines()
    settle(github, services)
    assert judgments(services) == [("rater-one", "A")]
    assert len(attempts(github, guid)) == 2


def test_only_deliveries_tandem_never_processed_and_would_accept_are_redelivered(github, services, pair):
    missed = comment_while_down(github, services, pair)

    # GitHub saw a failure (Tandem answered too late, say) but Tandem processed it.
    processed = str(uuid.uuid4())
    body = json.dumps({"zen": "late", "hook_id": 1}).encode()
    with services.storage.transaction() as session:
        session.add(ProcessedDelivery(delivery_id=processed, event="issue_comment", action="created"))
    up = tandem_url(github)
    github.set_webhook(DEAD)
    github.deliver("issue_comment", body, delivery_id=processed)
    github.drain()

    # Tandem turned this one down (its signature does not verify): sending it again would not help.
    github.set_webhook(up)
    [app] = github.core.state.apps.values()
    app.webhook_secret, secret = "not-the-secret", app.webhook_secret
    github.as_user("rater-two").comment(REPO, pair["B"], "/prefer B")
    github.drain()
    app.webhook_secret = secret
    rejected = github.deliveries[-1]
    assert rejected.status_code == 401

    report = redelivery.redeliver_failed(services, timedelta(hours=1))
    assert report.redelivered == [missed]
    assert report.already_processed == [processed]
    assert report.rejected == [(rejected.guid, 401)]
    assert f"skipped {rejected.guid}: Tandem turned it down (HTTP 401); it would again" in report.lines()
    settle(github, services)
    assert judgments(services) == [("rater-one", "A")]


def test_deliveries_are_listed_page_by_page(github, services, pair):
    """More failed deliveries than fit one page (100): every one is found through the cursor."""
    up = tandem_url(github)
    github.set_webhook(DEAD)
    guids = [str(uuid.uuid4()) for _ in range(105)]
    for guid in guids:
        github.deliver("issue_comment", json.dumps({"zen": guid}).encode(), delivery_id=guid)
    github.drain()
    github.set_webhook(up)

    report = redelivery.redeliver_failed(services, timedelta(minutes=30))
    assert sorted(report.redelivered) == sorted(guids)
    pages = [r for r in github.requests if r.operation_id == "apps/list-webhook-deliveries"]
    assert len(pages) >= 2 and any("cursor" in r.query for r in pages)


def test_a_window_longer_than_three_days_is_capped(github, services, pair):
    old = comment_while_down(github, services, pair)
    [attempt] = attempts(github, old)
    attempt.delivered_at = (datetime.now(UTC) - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = comment_while_down(github, services, pair, "/prefer B")

    report = redelivery.redeliver_failed(services, timedelta(days=5))
    assert report.redelivered == [recent]
    assert report.lines()[0] == "looking back 3d only: GitHub keeps deliveries for 3 days"


def cli_env(services, github) -> dict[str, str]:
    settings = services.settings
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    return clean | {
        "TANDEM_APP_ID": str(settings.app_id),
        "TANDEM_PRIVATE_KEY": settings.private_key.get_secret_value(),
        "TANDEM_WEBHOOK_SECRET": settings.webhook_secret.get_secret_value(),
        "TANDEM_GITHUB_API_URL": github.url,
        "TANDEM_DATABASE_URL": settings.database_url,
        "TANDEM_REDIS_URL": settings.redis_url,
    }


def test_the_command_says_what_it_did(github, services, pair, tmp_path):
    guid = comment_while_down(github, services, pair)
    env = cli_env(services, github)

    def tandem(*args):
        return subprocess.run(
            [TANDEM, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
        )

    result = tandem("redeliver", "--since", "1h")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("examined ") and lines[0].endswith(" deliveries of the last 1h")
    assert lines[1:] == [f"redelivered {guid}"]
    settle(github, services)
    assert judgments(services) == [("rater-one", "A")]

    result = tandem("redeliver", "--since", "5d")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "looking back 3d only: GitHub keeps deliveries for 3 days"
    assert result.stdout.splitlines()[-1] == "nothing to redeliver"


@pytest.mark.parametrize("since", ["24", "1w", "h", "-1h", "1.5h", "abc", "0h"])
def test_a_bad_since_is_one_clear_line(since, tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("TANDEM_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    # Redis and GitHub are never reached: the value is refused first.
    monkeypatch.setenv("TANDEM_REDIS_URL", "redis://127.0.0.1:9/0")
    result = CliRunner().invoke(cli, ["redeliver", "--since", since])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "--since" in lines[0] or "window" in lines[0]


def test_an_enormous_since_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["redeliver", "--since", "99999999999d"])
    assert result.exit_code == 1 and result.output.startswith("error: ")


def test_github_unreachable_is_one_clear_line(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")} | {
        "TANDEM_APP_ID": "1",
        "TANDEM_PRIVATE_KEY": key.decode(),
        "TANDEM_WEBHOOK_SECRET": "s",
        "TANDEM_GITHUB_API_URL": "http://127.0.0.1:9",
        "TANDEM_REDIS_URL": "redis://127.0.0.1:9/0",
    }
    result = subprocess.run(
        [TANDEM, "redeliver"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: GitHub at http://127.0.0.1:9 cannot be reached"]


# --- the periodic job ---------------------------------------------------------------------------


def scheduled(services) -> list[str]:
    return ScheduledJobRegistry(queue=services.queue(queue.DEFAULT)).get_job_ids()


def worker_services(services) -> Services:
    """What another `tandem worker` process has: its own Redis connection, same Redis."""
    connection = queue.connect(services.settings.redis_url)
    return Services(
        services.settings,
        Storage.from_url(services.settings.database_url),
        connection,
        GitHubApp(services.settings, connection),
    )


def test_the_periodic_job_is_scheduled_once_however_many_workers_start(github, services):
    starting = [worker_services(services) for _ in range(8)]
    barrier = threading.Barrier(len(starting))

    def start(current):
        barrier.wait()
        schedule.install(current)

    threads = [threading.Thread(target=start, args=(current,)) for current in starting]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [first] = scheduled(services)
    registry = ScheduledJobRegistry(queue=services.queue(queue.DEFAULT))
    when = registry.get_scheduled_time(first)
    assert timedelta(0) < when - datetime.now(UTC) <= schedule.REDELIVERY_EVERY

    # Workers restarting later, after Redis forgot whatever guarded the first start.
    for key in services.redis.scan_iter("tandem:schedule:*"):
        services.redis.delete(key)
    for current in starting:
        schedule.install(current)
    assert scheduled(services) == [first]

    # The run schedules the next one, once, and a worker starting now adds nothing.
    services.queue(queue.DEFAULT).enqueue_job(services.queue(queue.DEFAULT).fetch_job(first))
    registry.remove(first)
    run_jobs(services, [queue.DEFAULT])
    [second] = scheduled(services)
    assert second != first and registry.get_scheduled_time(second) - when == schedule.REDELIVERY_EVERY
    schedule.install(starting[0])
    assert scheduled(services) == [second]


def test_the_periodic_job_redelivers_what_was_missed(github, services, pair):
    guid = comment_while_down(github, services, pair)
    lines = schedule.redeliver_missed_webhooks()
    assert f"redelivered {guid}" in lines
    assert len(scheduled(services)) == 1
    settle(github, services)
    assert judgments(services) == [("rater-one", "A")]


def test_the_periodic_jobs_log_lines_carry_its_job_id(github, services, pair):
    guid = comment_while_down(github, services, pair)
    seen: list[tuple[str, dict]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.getMessage(), dict(record.context)))

    handler = Capture()
    handler.addFilter(logs.ContextFilter())
    logger, level = logging.getLogger("workers.schedule"), logging.getLogger("workers.schedule").level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        services.queue(queue.DEFAULT).enqueue(
            job_names.REDELIVER_MISSED_WEBHOOKS,
            kwargs=job_names.payload(job_names.REDELIVER_MISSED_WEBHOOKS),
            job_id="redeliver-by-hand",
        )
        run_jobs(services, [queue.DEFAULT])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert (f"redelivered {guid}", {"job_id": "redeliver-by-hand"}) in seen


def test_no_credentials_no_periodic_job(services):
    schedule.install(services)
    assert scheduled(services) == []


def _sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_delivery_tandem_answered_but_github_recorded_as_failed_is_not_redelivered(github, services, pair):
    """Tandem queued it (and answered 202) but GitHub gave up waiting: GitHub shows a failure,
    the queue has the delivery; nothing is redelivered twice and nothing is recorded twice."""
    up = tandem_url(github)
    github.set_webhook(DEAD)
    github.as_user("rater-one").comment(REPO, pair["A"], "/prefer A")
    github.drain()
    github.set_webhook(up)
    failed = github.deliveries[-1]
    answer = httpx.post(
        up,
        content=failed.body,
        headers={
            "X-GitHub-Event": failed.event,
            "X-GitHub-Delivery": failed.guid,
            "X-Hub-Signature-256": _sign(failed.body, "test-webhook-secret"),
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 202
    settle(github, services)

    report = redelivery.redeliver_failed(services, timedelta(hours=1))
    assert report.redelivered == [] and report.already_processed == [failed.guid]
    with services.storage.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Judgment)) == 1
