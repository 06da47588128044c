"""POST /webhooks/github: verify before reading, queue durably, answer at once."""

from __future__ import annotations

import json
import logging
import uuid
import zlib

import pytest
import redis
from fastapi.testclient import TestClient
from rq.serializers import JSONSerializer

from app import signatures
from app.main import create_app
from tandem.infra import queue
from tandem.infra.models import ProcessedDelivery
from tests.conftest import processed_runs, relay, run_jobs
from tests.support.deliveries import FIXTURES, headers_for, installation_created, post


def test_github_documented_signature_vector():
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
    secret, payload = b"It's a Secret to Everybody", b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signatures.sign(secret, payload) == expected

    def verified(chunks: list[bytes], header: str | None) -> bool:
        claimed = signatures.claimed_digest(header)
        mac = signatures.streaming(secret)
        for chunk in chunks:  # as the body arrives
            mac.update(chunk)
        return claimed is not None and signatures.matches(mac, claimed)

    assert verified([b"Hello, ", b"World!"], expected)
    assert not verified([payload, b" "], expected)
    assert not verified([payload], expected.replace("sha256=", "sha1="))
    assert not verified([payload], "sha256=zz")
    assert not verified([payload], None)


@pytest.fixture
def client(services):
    with TestClient(create_app(services)) as test_client:
        yield test_client


def queued_jobs(services) -> list:
    relay(services)
    return queue.queue(queue.WEBHOOKS, services.redis).get_jobs()


def test_wrong_or_missing_signature_is_401_and_leaves_no_trace(client, services):
    body = json.dumps(installation_created()).encode()
    wrong = headers_for(body, "installation", secret=b"not-the-secret")
    missing = {k: v for k, v in wrong.items() if k != "X-Hub-Signature-256"}
    for headers in (wrong, missing):
        assert client.post("/webhooks/github", content=body, headers=headers).status_code == 401
    assert services.redis.dbsize() == 0
    run_jobs(services)
    with services.storage.transaction() as session:
        assert session.query(ProcessedDelivery).count() == 0


def test_signature_is_checked_before_the_body_is_parsed(client, services):
    # Garbage with a wrong signature is a 401, not a 400: nothing reads an unverified body.
    body = b"{not json"
    headers = headers_for(body, "installation", secret=b"wrong")
    assert client.post("/webhooks/github", content=body, headers=headers).status_code == 401
    assert post(client, "installation", body).status_code == 400


@pytest.mark.parametrize("missing", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_missing_event_headers_are_400(client, missing):
    body = json.dumps(installation_created()).encode()
    headers = headers_for(body, "installation")
    del headers[missing]
    assert client.post("/webhooks/github", content=body, headers=headers).status_code == 400


def test_non_object_json_is_400(client):
    assert post(client, "installation", b"[1, 2]").status_code == 400


def test_body_over_25_mb_is_413_without_reading_it(client, services):
    declared = {"Content-Length": str(25 * 1024 * 1024 + 1)}
    headers = headers_for(b"", "installation") | declared
    response = client.post("/webhooks/github", content=b"{}", headers=headers)
    assert response.status_code == 413
    assert services.redis.dbsize() == 0


def test_streamed_body_over_25_mb_is_413(client):
    def chunks():
        for _ in range(26):
            yield b" " * (1024 * 1024)

    headers = headers_for(b"", "installation")
    assert client.post("/webhooks/github", content=chunks(), headers=headers).status_code == 413


def test_ping_is_200(client):
    payload = json.loads((FIXTURES / "ping" / "payload.json").read_text())
    response = post(client, "ping", payload)
    assert response.status_code == 200
    assert response.json()["message"] == "pong"


def test_unhandled_event_is_202_and_not_queued(client, services):
    payload = json.loads((FIXTURES / "repository" / "created.payload.json").read_text())
    response = post(client, "repository", payload)
    assert response.status_code == 202
    assert "ignored" in response.json()["message"]
    assert queued_jobs(services) == []


def test_handled_event_is_queued_as_json_with_the_delivery_id(client, services):
    delivery = str(uuid.uuid4())
    response = post(client, "installation", installation_created(), delivery)
    assert response.status_code == 202
    [job] = queued_jobs(services)
    assert job.id == f"delivery-{delivery}"
    assert (job.kwargs["delivery_id"], job.kwargs["event"], job.kwargs["action"]) == (
        delivery,
        "installation",
        "created",
    )
    # Plain JSON in Redis, not a pickle: a job survives a redeploy of the code.
    # (RQ compresses the serialized call with zlib.)
    func, _instance, _args, kwargs = JSONSerializer.loads(zlib.decompress(services.redis.hget(job.key, "data")))
    assert func == "workers.deliveries.process_delivery"
    assert kwargs["delivery_id"] == delivery


def test_a_pending_duplicate_is_not_queued_twice(client, services):
    delivery = str(uuid.uuid4())
    assert post(client, "installation", installation_created(), delivery).json()["message"] == "queued"
    assert post(client, "installation", installation_created(), delivery).json()["message"] == "already queued"
    assert len(queued_jobs(services)) == 1


def test_redis_down_is_503_never_2xx(services, settings):
    services.redis = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    with TestClient(create_app(services)) as test_client:
        response = post(test_client, "installation", installation_created())
    assert response.status_code == 503


def test_a_delivery_is_processed_once_even_when_delivered_twice(client, services, caplog):
    caplog.set_level(logging.INFO, logger="workers.deliveries")
    delivery = str(uuid.uuid4())
    post(client, "installation", installation_created(), delivery)
    run_jobs(services)
    # GitHub's redelivery keeps the GUID; the job already ran, so the delivery is queued again...
    assert post(client, "installation", installation_created(), delivery).status_code == 202
    assert queued_jobs(services)
    run_jobs(services)
    # ...and the database, which recorded the GUID with the effects, makes it a no-op.
    assert processed_runs(caplog) == {delivery: 1}
    with services.storage.transaction() as session:
        assert session.query(ProcessedDelivery).filter_by(delivery_id=delivery).count() == 1


def test_a_delivery_whose_processing_failed_stays_processable(client, services, monkeypatch):
    from workers import installations

    delivery = str(uuid.uuid4())
    calls = []

    def broken(session, data):
        calls.append(data.id)
        raise RuntimeError("database fell over")

    monkeypatch.setattr(installations.installations, "upsert_installation", broken)
    services.settings.job_retry_intervals = []
    post(client, "installation", installation_created(), delivery)
    run_jobs(services)
    assert calls == [installation_created()["installation"]["id"]]
    with services.storage.transaction() as session:
        assert session.get(ProcessedDelivery, delivery) is None
    monkeypatch.undo()
    # GitHub's redelivery of the failed GUID is queued and processed this time.
    assert post(client, "installation", installation_created(), delivery).json()["message"] == "queued"
    run_jobs(services)
    with services.storage.transaction() as session:
        assert session.get(ProcessedDelivery, delivery) is not None


def test_readyz_and_healthz(client, services):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    # No app id or key in these settings: not ready, and it says why.
    assert response.status_code == 503
    assert any("TANDEM_APP_ID" in problem for problem in response.json()["problems"])
