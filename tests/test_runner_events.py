"""Outgoing webhooks to the model runner: recorded with the change, signed, retried, redelivered,
and checked by the reference runner's listener."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from cli.reference_runner import EventListener
from tandem.domain import runner_events
from tandem.infra.models import OutboxEntry
from tests.conftest import run_jobs
from tests.servers import LiveServer

SECRET = "runner-secret"


@pytest.fixture
def listener():
    """The reference runner's listener on a free loopback port."""
    found = EventListener("127.0.0.1", 0, SECRET.encode())
    found.start()
    yield found
    found.stop()


def announced(listener) -> list[tuple[int, int]]:
    found = []
    while not listener.rounds.empty():
        found.append(listener.rounds.get_nowait())
    return found


def emit(services, event=runner_events.ROUND_AWAITING_OUTPUTS, task_id=7, number=2) -> None:
    with services.storage.transaction() as session:
        runner_events.emit(session, event, {"task_id": task_id, "round": number, "status": "awaiting_outputs"})


def test_an_event_reaches_the_runner_signed_and_is_believed(services, listener):
    services.settings.runner_url = f"http://{listener.address}/events"
    services.settings.runner_secret = SecretStr(SECRET)
    emit(services)
    emit(services, runner_events.ROUND_CLOSED, number=1)  # verified, but not a round to answer
    run_jobs(services)
    assert announced(listener) == [(7, 2)]
    with services.storage.transaction() as session:
        assert session.scalars(select(OutboxEntry)).all() == []  # queued right after the commit


class Receiver:
    """A runner endpoint that keeps every request it gets (headers and raw body)."""

    def __init__(self):
        self.received: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        self.received.append(({k.decode().lower(): v.decode() for k, v in scope["headers"]}, body))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_a_delivery_has_githubs_headers_and_keeps_its_id_when_redelivered(services):
    receiver = Receiver()
    with LiveServer(receiver) as server:
        services.settings.runner_url = f"{server.url}/events"
        services.settings.runner_secret = SecretStr(SECRET)
        emit(services, runner_events.TASK_CLOSED, task_id=9)
        run_jobs(services)
        [(headers, body)] = receiver.received
        event = json.loads(body)
        assert (headers["x-tandem-event"], event["event"], event["task_id"]) == ("task.closed", "task.closed", 9)
        assert headers["x-tandem-delivery"] == event["delivery"]
        assert headers["x-tandem-signature-256"] == "sha256=" + hmac.digest(SECRET.encode(), body, hashlib.sha256).hex()
        assert headers["content-type"] == "application/json"

        services.settings.runner_secret = None  # refused unsigned: fails every try, then redelivered
        emit(services, runner_events.TASK_CLOSED, task_id=10)
        run_jobs(services)
        [failed] = runner_events.failed_deliveries(services)
        assert "TANDEM_RUNNER_SECRET" in failed["reason"] and len(receiver.received) == 1
        services.settings.runner_secret = SecretStr(SECRET)
        runner_events.redeliver(services, [failed["delivery"]])
        run_jobs(services)
        assert receiver.received[1][0]["x-tandem-delivery"] == failed["delivery"]


def test_a_forged_or_unsigned_body_is_refused_by_the_runner(listener):
    body = json.dumps({"event": "round.awaiting_outputs", "task_id": 7, "round": 2}).encode()
    url = f"http://{listener.address}/events"
    headers = {"X-Tandem-Event": "round.awaiting_outputs"}
    forged = "sha256=" + hmac.digest(b"not-the-secret", body, hashlib.sha256).hex()
    assert httpx.post(url, content=body, headers=headers).status_code == 401
    assert httpx.post(url, content=body, headers=headers | {"X-Tandem-Signature-256": forged}).status_code == 401
    right = runner_events.signature(SECRET.encode(), body)
    tampered = body.replace(b'"round": 2', b'"round": 3')
    assert httpx.post(url, content=tampered, headers=headers | {"X-Tandem-Signature-256": right}).status_code == 401
    assert announced(listener) == []
    assert httpx.post(url, content=body, headers=headers | {"X-Tandem-Signature-256": right}).status_code == 202
    assert announced(listener) == [(7, 2)]


def test_no_runner_url_records_nothing(services):
    emit(services)
    with services.storage.transaction() as session:
        assert session.scalars(select(OutboxEntry)).all() == []


def test_an_event_of_a_rolled_back_change_is_never_sent(services):
    services.settings.runner_url = "http://127.0.0.1:9/events"
    services.settings.runner_secret = SecretStr(SECRET)
    with pytest.raises(RuntimeError), services.storage.transaction() as session:
        runner_events.emit(session, runner_events.TASK_CLOSED, {"task_id": 7})
        raise RuntimeError("the change failed")
    with services.storage.transaction() as session:
        assert session.scalars(select(OutboxEntry)).all() == []
    assert services.queue("default").count == 0


def test_a_delivery_failing_every_try_is_listed_and_redelivered_with_its_id(services, listener):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    services.settings.runner_url = f"http://127.0.0.1:{dead}/events"
    services.settings.runner_secret = SecretStr(SECRET)
    emit(services, task_id=8, number=1)
    run_jobs(services)
    [failed] = runner_events.failed_deliveries(services)
    assert failed["event"] == "round.awaiting_outputs"
    assert "ConnectError" in failed["reason"]
    with pytest.raises(runner_events.NotFound):
        runner_events.redeliver(services, ["no-such-delivery"])

    services.settings.runner_url = f"http://{listener.address}/events"
    assert runner_events.redeliver(services, None) == [failed["delivery"]]
    run_jobs(services)
    assert announced(listener) == [(8, 1)]
    assert runner_events.failed_deliveries(services) == []


def test_a_signed_event_the_runner_cannot_read_is_answered_400(listener):
    body = b'{"event": "round.awaiting_outputs"}'
    headers = {
        "X-Tandem-Event": "round.awaiting_outputs",
        "X-Tandem-Signature-256": runner_events.signature(SECRET.encode(), body),
    }
    assert httpx.post(f"http://{listener.address}/", content=body, headers=headers).status_code == 400
    assert announced(listener) == []


def test_failed_deliveries_from_the_command_line(services, tmp_path):
    services.settings.runner_url = "http://127.0.0.1:9/events"  # the discard port: nothing answers
    services.settings.runner_secret = SecretStr(SECRET)
    emit(services, runner_events.ROUND_CLOSED, task_id=11)
    run_jobs(services)
    [failed] = runner_events.failed_deliveries(services)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")} | {
        "TANDEM_DATABASE_URL": services.settings.database_url,
        "TANDEM_REDIS_URL": services.settings.redis_url,
    }

    def tandem(*args: str) -> subprocess.CompletedProcess:
        command = [str(Path(sys.executable).with_name("tandem")), "runner-events", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    listed = tandem("failed").stdout.split("\t")
    assert listed[:2] == [failed["delivery"], "round.closed"] and "ConnectError" in listed[3]
    assert tandem("redeliver").stderr == "error: give delivery ids, or --failed\n"
    assert tandem("redeliver", "nope").stderr.startswith("error: no failed runner delivery nope")
    assert tandem("redeliver", "--failed").stdout.splitlines() == [
        f"queued {failed['delivery']}",
        "1 deliveries queued again",
    ]
    assert tandem("failed").stdout == "no failed runner deliveries\n"


def test_the_listener_refuses_a_body_of_no_stated_or_too_large_length(listener):
    with socket.create_connection(tuple(listener.server.server_address[:2])) as connection:
        connection.settimeout(10)  # a listener reading to the end of the connection never answers
        connection.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
        assert connection.recv(100).startswith(b"HTTP/1.0 411")
    too_large = httpx.post(f"http://{listener.address}/", content=b"x" * (2 * 1024 * 1024))
    assert too_large.status_code == 413
