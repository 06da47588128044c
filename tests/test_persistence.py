"""A delivery answered 202 lives in Redis until processed: `tandem doctor` and /readyz warn when
that Redis does not persist, and scripts/services (scripts/start) turns append-only persistence
on in a running Redis, or says plainly that it could not. Each test runs its own redis-server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from tandem.infra import readiness
from tests.support.cli import run
from tests.support.redis_tools import RedisServer

ROOT = Path(__file__).parents[1]

CASES = {
    "nothing": (("--appendonly", "no", "--save", ""), "does not persist (appendonly no, no snapshots)"),
    "snapshots": (("--appendonly", "no", "--save", "3600 1"), "persists in snapshots only (save 3600 1)"),
    "config refused": (("--appendonly", "no", "--rename-command", "CONFIG", ""), "has append-only persistence off"),
    "append-only": (("--appendonly", "yes"), None),
}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("case", list(CASES))
def test_doctor_and_readyz_warn_when_redis_does_not_persist(services, tmp_path, case):
    options, warning = CASES[case]
    with RedisServer(tmp_path, *options) as server:
        services.redis = redis.Redis.from_url(server.url)
        found = readiness.persistence_warnings(services)
        with TestClient(create_app(services)) as client:
            answer = client.get("/readyz").json()
        doctor = run(
            "doctor", cwd=tmp_path, TANDEM_REDIS_URL=server.url, TANDEM_DATABASE_URL=services.settings.database_url
        )
        services.redis.close()
    if warning is None:
        assert found == [] and "warnings" not in answer and "persistence" not in doctor.stdout
        return
    [line] = found
    assert f"Redis at redis://127.0.0.1:{server.port}/0 {warning}" in line and "appendonly yes" in line
    assert answer["warnings"] == [line]
    assert f"WARN  persistence: {line}" in doctor.stdout.splitlines()


def services_script(port: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")} | {
        "REDIS_PORT": str(port),
        "REDIS_APPENDONLY": "yes",
    }
    return subprocess.run(
        [str(ROOT / "scripts" / "services"), "redis"], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def appendonly(port: int) -> str:
    return redis.Redis(port=port, decode_responses=True).config_get("appendonly")["appendonly"]


def test_scripts_turn_on_append_only_in_a_running_redis(tmp_path):
    config = tmp_path / "redis.conf"
    config.write_text('appendonly no\nsave ""\n')
    with RedisServer(tmp_path) as server:  # no config file: the change cannot be saved in one
        result = services_script(server.port)
        assert result.returncode == 0, result.stderr
        assert appendonly(server.port) == "yes"
        assert "turned on append-only persistence in the running Redis" in result.stderr
        assert "add 'appendonly yes' to its redis.conf" in result.stderr
        assert services_script(server.port).stderr == "", "already persistent: nothing to say"
    server = RedisServer(tmp_path)
    server.command.insert(1, str(config))  # redis-server CONFIGFILE --port ...
    with server:
        result = services_script(server.port)
        assert appendonly(server.port) == "yes" and "appendonly yes" in config.read_text()
        assert "not in that Redis's config file" not in result.stderr


def test_scripts_say_plainly_when_a_running_redis_does_not_persist(tmp_path):
    with RedisServer(tmp_path, "--appendonly", "no", "--rename-command", "CONFIG", "") as server:
        result = services_script(server.port)
    assert result.returncode == 0
    assert f"warning: the Redis running at 127.0.0.1:{server.port} does not persist" in result.stderr
    assert "a Redis restart loses accepted deliveries" in result.stderr
