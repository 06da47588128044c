"""What an on-call engineer sees: log lines carrying the ids of the delivery or job they belong
to, GitHub requests logged without their tokens, and /metrics moving with the work done."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from tandem.infra import logs
from tests.conftest import relay, run_jobs, settle, submit_task
from tests.support.deliveries import installation_created, post

REPO = "evals-org/mlflow"


@contextlib.contextmanager
def log_lines(fmt: str, level: int = logging.INFO, *loggers: str) -> Iterator[io.StringIO]:
    """What Tandem's configured handler (tandem.infra.logs) would print, for the duration."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.FORMATTERS[fmt]())
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in loggers}
    root.addHandler(handler)
    for name in loggers:
        logging.getLogger(name).setLevel(level)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def moved(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture
def client(services):
    with TestClient(create_app(services)) as test_client:
        yield test_client


def test_a_delivery_s_log_lines_carry_its_ids_as_parseable_json(client, services):
    delivery = str(uuid.uuid4())
    payload = installation_created()
    with log_lines("json", logging.INFO, "workers.deliveries") as out:
        post(client, "installation", payload, delivery)
        run_jobs(services)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    [processed] = [line for line in lines if line["msg"].startswith(f"delivery {delivery} processed")]
    assert processed["delivery_id"] == delivery
    assert processed["job_id"] == f"delivery-{delivery}"
    assert processed["installation_id"] == payload["installation"]["id"]
    assert (processed["event"], processed["level"], processed["logger"]) == (
        "installation",
        "INFO",
        "workers.deliveries",
    )
    # Bound for the job only: nothing logged after it carries them.
    logging.getLogger("workers.deliveries").warning("after")
    assert logs.current() == {}


def test_key_value_lines_quote_values_keep_tracebacks_and_mask_tokens():
    token = "ghs_" + "a1B2" * 9
    with log_lines("kv", logging.INFO, "tests.kv") as out, logs.bound(delivery_id="d-1", task_id=7):
        try:
            raise RuntimeError(f"git said: Authorization: Bearer {token}")
        except RuntimeError:
            logging.getLogger("tests.kv").exception("push of task %s failed", 7)
    [line] = out.getvalue().splitlines()
    assert line.split(" ", 1)[1].startswith(
        'level=ERROR logger=tests.kv msg="push of task 7 failed" delivery_id=d-1 task_id=7'
    )
    assert 'traceback="Traceback (most recent call last):\\n' in line and "RuntimeError: git said" in line
    assert token not in line and "[redacted]" in line


def test_github_requests_are_logged_at_debug_without_tokens(github, services):
    with log_lines("kv", logging.DEBUG, "tandem.infra.github") as out:
        token = services.github.installation_token(github.installation.id)
        client = services.github.as_installation(github.installation.id)
        client.rest.repos.get("evals-org", "mlflow")
    text = out.getvalue()
    lines = [line for line in text.splitlines() if 'msg="GitHub request"' in line]
    assert any(
        f"method=POST path=/app/installations/{github.installation.id}/access_tokens status=201" in line
        for line in lines
    ), text
    [repo] = [line for line in lines if "path=/repos/evals-org/mlflow " in line]
    assert "method=GET" in repo and "status=200" in repo and "rate_limit_remaining=" in repo
    jwt = services.github.as_app().auth.get_auth_flow(services.github.as_app()).get_jwt()
    assert token not in text and jwt not in text and "uthorization" not in text


def test_metrics_move_for_a_delivery_a_job_and_a_judgment(github, services, blinding):
    with TestClient(create_app(services)) as client:
        before = scrape(client)
        task_id = submit_task(services, blinding)
        settle(github, services)
        from tandem.infra.models import Task

        with services.storage.transaction() as session:
            number = session.get(Task, task_id).pair.sides[0].pr_number
        github.as_user("rater-one").comment(REPO, number, "/prefer A\nCleaner fix.")
        settle(github, services)
        after = scrape(client)
    assert moved(before, after, "tandem_webhook_deliveries_total", event="issue_comment", outcome="accepted") >= 1
    assert moved(before, after, "tandem_deliveries_processed_total", event="issue_comment", outcome="processed") >= 1
    assert moved(before, after, "tandem_job_duration_seconds_count", function="process_delivery") >= 1
    assert moved(before, after, "tandem_job_duration_seconds_count", function="open_pair") == 1
    assert moved(before, after, "tandem_judgments_recorded_total") == 1
    assert moved(before, after, "tandem_pairs_opened_total") == 1
    assert moved(before, after, "tandem_rounds_opened_total") == 1
    assert moved(before, after, "tandem_github_requests_total", method="POST", status="201") >= 1
    assert after[("tandem_redis_up", frozenset())] == 1


def test_inbox_and_queue_depths_are_read_when_scraped(client, services):
    post(client, "installation", installation_created())
    waiting = scrape(client)
    assert waiting[("tandem_inbox_deliveries", frozenset())] == 1
    assert waiting[("tandem_inbox_lag_seconds", frozenset())] >= 0
    relay(services)
    queued = scrape(client)
    assert queued[("tandem_inbox_deliveries", frozenset())] == 0
    assert queued[("tandem_inbox_lag_seconds", frozenset())] == 0
    assert queued[("tandem_queue_jobs", frozenset({("queue", "webhooks"), ("state", "queued")}))] == 1
    assert moved(waiting, queued, "tandem_webhook_deliveries_total", event="installation", outcome="accepted") == 0


def test_refused_and_duplicate_deliveries_are_counted_apart(client, services):
    before = scrape(client)
    delivery = str(uuid.uuid4())
    post(client, "installation", installation_created(), delivery)
    post(client, "installation", installation_created(), delivery)
    post(client, "installation", installation_created(), secret=b"wrong")
    after = scrape(client)
    assert moved(before, after, "tandem_webhook_deliveries_total", event="installation", outcome="accepted") == 1
    assert moved(before, after, "tandem_webhook_deliveries_total", event="installation", outcome="duplicate") == 1
    # Before its signature is checked, a request's event header is anyone's word: not a label.
    assert moved(before, after, "tandem_webhook_deliveries_total", event="unverified", outcome="refused") == 1


def test_a_rate_limit_slept_through_is_counted(github, services):
    from tandem.infra import metrics

    client = services.github.as_installation(github.installation.id)
    client.rest.repos.get("evals-org", "mlflow")  # (a token first: the fault is for the next request)
    before = metrics.RATE_LIMIT_WAITS.labels("slept")._value.get()
    github.faults.too_many_requests(times=1, retry_after=0, path_contains="/repos/evals-org/mlflow")
    client.rest.repos.get("evals-org", "mlflow")
    assert metrics.RATE_LIMIT_WAITS.labels("slept")._value.get() == before + 1


def test_a_rolled_back_transaction_counts_nothing(storage):
    from tandem.infra import metrics

    before = metrics.JUDGMENTS._value.get()
    with pytest.raises(RuntimeError), storage.transaction() as session:
        metrics.count_on_commit(session, metrics.JUDGMENTS)
        raise RuntimeError("the delivery failed")
    assert metrics.JUDGMENTS._value.get() == before
    with storage.transaction() as session:
        metrics.count_on_commit(session, metrics.JUDGMENTS)
    assert metrics.JUDGMENTS._value.get() == before + 1


def test_several_processes_add_up_in_one_scrape(tmp_path, redis_url):
    """PROMETHEUS_MULTIPROC_DIR: what a worker process counted shows in a web process's scrape."""
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from tandem.infra import metrics; metrics.JUDGMENTS.inc(); metrics.JUDGMENTS.inc()"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True)
    read = (
        "import redis, sys; from tandem.infra import metrics; "
        f"sys.stdout.write(metrics.exposition(redis.Redis.from_url({redis_url!r}))[0].decode())"
    )
    text = subprocess.run([sys.executable, "-c", read], env=env, check=True, capture_output=True, text=True).stdout
    samples = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples["tandem_judgments_recorded_total"] == 4
    assert samples["tandem_inbox_deliveries"] == 0
