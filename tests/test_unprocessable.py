"""Signed but malformed payloads, through the real intake, relay and job: each is parked once,
with the reason, and never retried; `tandem deliveries failed` lists what is parked and
`tandem deliveries retry` replays it."""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from app.main import create_app
from tandem.infra import migrate, queue
from tandem.infra.models import DeadLetter, ProcessedDelivery
from tests.conftest import processed_runs, run_jobs
from tests.servers import LiveServer
from tests.support.cli import run
from tests.support.deliveries import deliver, example
from tests.support.scheduled import scheduled_jobs


def installation(**changes) -> dict:
    return example("installation", "created.payload.json") | changes


def comment_on_a_pull_request(**changes) -> dict:
    payload = example("issue_comment", "created.payload.json")
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
    payload["comment"] |= changes
    return payload


def without(payload: dict, key: str) -> dict:
    return {k: v for k, v in payload.items() if k != key}


def long_login() -> dict:
    payload = installation()
    payload["installation"]["account"]["login"] = "x" * 300  # the column holds 255
    return payload


MALFORMED = {
    "installation is a string": ("installation", installation(installation="oops"), "installation: Input should be"),
    "installation missing": ("installation", without(installation(), "installation"), "installation: Field required"),
    "repository without id": (
        "installation_repositories",
        example("installation_repositories", "added.payload.json") | {"repositories_added": [{"name": "x"}]},
        "repositories_added.0.id: Field required",
    ),
    "id out of range": (
        "installation",
        installation(installation=installation()["installation"] | {"id": 2**70}),
        "installation.id: Input should be less than",
    ),
    "comment author is a string": (
        "issue_comment",
        comment_on_a_pull_request(user="octocat"),
        "comment.user: Input should be",
    ),
    "comment id is text": (
        "issue_comment",
        comment_on_a_pull_request(id="one"),
        "comment.id: Input should be a valid integer",
    ),
    "comment without its author": (
        "issue_comment",
        comment_on_a_pull_request(user=None),
        "comment.user: Input should be",
    ),
    "comment on no issue": (
        "issue_comment",
        without(comment_on_a_pull_request(), "issue"),
        "issue: Field required",
    ),
    "review on no pull request": (
        "pull_request_review",
        without(example("pull_request_review", "submitted.payload.json"), "pull_request"),
        "pull_request: Field required",
    ),
    "push without its head": (
        "pull_request",
        example("pull_request", "synchronize.payload.json") | {"pull_request": {"number": 1}},
        "pull_request.head: Field required",
    ),
    "time without a zone": (
        "issue_comment",
        comment_on_a_pull_request(created_at="2026-11-29T10:00:00"),
        "comment.created_at: Input should have timezone info",
    ),
}


def parked_logs(caplog) -> Counter[str]:
    return Counter(r.args[0] for r in caplog.records if r.name == "workers.deliveries" and "parked as" in r.msg)


def cli(settings, *args: str, tmp_path: Path):
    return run(*args, cwd=tmp_path, TANDEM_DATABASE_URL=settings.database_url, TANDEM_REDIS_URL=settings.redis_url)


def send(services, event: str, payload: dict) -> str:
    delivery_id = str(uuid.uuid4())
    with LiveServer(create_app(services)) as server, httpx.Client(base_url=server.url) as client:
        assert deliver(client, event, json.dumps(payload).encode(), delivery_id).status_code == 202
    return delivery_id


def test_malformed_payloads_are_parked_once_with_the_reason_and_not_retried(services, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="workers.deliveries")
    sent = {send(services, event, payload): reason for event, payload, reason in MALFORMED.values()}
    run_jobs(services)

    assert parked_logs(caplog) == {delivery_id: 1 for delivery_id in sent}, "each ran once"
    webhooks = services.queue(queue.WEBHOOKS)
    assert webhooks.failed_job_registry.count == 0 and webhooks.count == 0
    assert scheduled_jobs(services, queue.WEBHOOKS) == [], "no retry is waiting"
    with services.storage.transaction() as session:
        letters = {letter.delivery_id: letter for letter in session.query(DeadLetter)}
        assert session.query(ProcessedDelivery).count() == 0
    assert set(letters) == set(sent)
    for delivery_id, reason in sent.items():
        assert letters[delivery_id].kind == "unprocessable"
        assert reason in letters[delivery_id].reason

    listing = cli(services.settings, "deliveries", "failed", tmp_path=tmp_path)
    assert listing.returncode == 0, listing.stderr
    for delivery_id, reason in sent.items():
        [line] = [line for line in listing.stdout.splitlines() if line.startswith(delivery_id)]
        assert "\tunprocessable\t" in line and reason in line


def test_a_value_the_database_cannot_store_is_unprocessable(services, database_url, caplog):
    caplog.set_level(logging.INFO, logger="workers.deliveries")
    delivery_id = send(services, "installation", long_login())
    run_jobs(services)
    with services.storage.transaction() as session:
        letter = session.get(DeadLetter, delivery_id)
        processed = session.get(ProcessedDelivery, delivery_id) is not None
    if database_url[0].startswith("sqlite"):  # SQLite stores any length: nothing is wrong there
        assert processed and letter is None
        return
    assert not processed and parked_logs(caplog) == {delivery_id: 1}
    assert letter.kind == "unprocessable" and "the database refused a value: value too long" in letter.reason
    assert services.queue(queue.WEBHOOKS).failed_job_registry.count == 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_delivery_failing_on_every_try_is_parked_then_replayed(services, caplog, monkeypatch, tmp_path):
    from workers import installations

    caplog.set_level(logging.INFO, logger="workers.deliveries")
    tries = []

    def broken(session, data):
        tries.append(data.id)
        raise RuntimeError("a bug in the handler")

    monkeypatch.setattr(installations.installations, "upsert_installation", broken)
    delivery_id = send(services, "installation", installation())
    run_jobs(services)
    assert len(tries) == 1 + len(services.settings.job_retry_intervals), "a bug spends the retries"
    with services.storage.transaction() as session:
        letter = session.get(DeadLetter, delivery_id)
    assert letter.kind == "failed" and letter.reason == "RuntimeError: a bug in the handler"
    assert services.queue(queue.WEBHOOKS).failed_job_registry.count == 0

    with services.storage.engine.begin() as connection:  # (made by create_all: say it is migrated)
        MigrationContext.configure(connection).stamp(ScriptDirectory(str(migrate.MIGRATIONS)), "head")
    doctor = cli(services.settings, "doctor", tmp_path=tmp_path)
    assert "WARN  deliveries: 1 deliveries parked (1 failed): see `tandem deliveries failed`" in doctor.stdout

    assert "give the GUIDs" in cli(services.settings, "deliveries", "retry", tmp_path=tmp_path).stderr
    assert "no parked delivery nope" in cli(services.settings, "deliveries", "retry", "nope", tmp_path=tmp_path).stderr
    monkeypatch.undo()  # the bug is fixed
    replayed = cli(services.settings, "deliveries", "retry", delivery_id, tmp_path=tmp_path)
    assert replayed.stdout.splitlines() == [f"queued {delivery_id}", "1 deliveries queued again"], replayed.stderr
    listing = cli(services.settings, "deliveries", "failed", tmp_path=tmp_path).stdout
    assert delivery_id in listing and "\treplayed " in listing
    run_jobs(services)
    assert processed_runs(caplog) == {delivery_id: 1}
    with services.storage.transaction() as session:
        assert session.get(DeadLetter, delivery_id) is None
    assert cli(services.settings, "deliveries", "failed", tmp_path=tmp_path).stdout == "no parked deliveries\n"
    assert "deliveries" not in cli(services.settings, "doctor", tmp_path=tmp_path).stdout


def test_replaying_all_parks_again_what_is_still_malformed(services, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="workers.deliveries")
    delivery_id = send(services, "installation", without(installation(), "installation"))
    run_jobs(services)
    replayed = cli(services.settings, "deliveries", "retry", "--all", tmp_path=tmp_path)
    assert replayed.stdout.splitlines() == [f"queued {delivery_id}", "1 deliveries queued again"], replayed.stderr
    run_jobs(services)
    assert parked_logs(caplog) == {delivery_id: 2}
    with services.storage.transaction() as session:
        letter = session.get(DeadLetter, delivery_id)
        assert letter.kind == "unprocessable" and letter.retried_at is None
