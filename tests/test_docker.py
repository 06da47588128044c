"""Dockerfile and docker-compose.yml as shipped, checked without a Docker engine: every command
they run exists in the CLI with the options given, every file they copy or mount exists, and the
deployment has what it needs (credentials on a volume its user owns, no password in the file,
health checks, restarts, a worker that scales). The manual check with Docker is in the README."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import socket
import tomllib
from pathlib import Path

import pytest
import yaml
from typer.main import get_command

from cli.main import cli
from tandem.infra.settings import load_settings
from tests.processes import start_worker, wait_for, worker_env
from tests.support.cli import run

ROOT = Path(__file__).parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
TANDEM_SERVICES = [name for name, service in SERVICES.items() if service.get("image") == "tandem:local"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(keyword: str) -> list[str]:
    """The Dockerfile's instructions of one kind, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(f"{keyword} ")]


def dockerfile_env() -> dict[str, str]:
    return dict(word.split("=", 1) for line in instructions("ENV") for word in shlex.split(line))


def assert_cli_accepts(argv: list[str]) -> None:
    """argv names an existing `tandem` command, and every option it gives is one of that command's."""
    assert argv[0] == "tandem", argv
    command, words = get_command(cli), argv[1:]
    while getattr(command, "commands", None):
        assert words and words[0] in command.commands, f"no such command: {argv}"
        command, words = command.commands[words[0]], words[1:]
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for word in words:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in known, f"{argv}: tandem has no option {word}"


def test_compose_file_runs_only_real_commands():
    assert TANDEM_SERVICES and {"app", "worker", "migrate", "web"} <= set(TANDEM_SERVICES)
    for name in TANDEM_SERVICES:
        assert_cli_accepts(SERVICES[name]["command"])
        test = SERVICES[name].get("healthcheck", {}).get("test", [])
        if test[1:2] == ["tandem"]:
            assert_cli_accepts(test[1:])
    assert_cli_accepts(json.loads(instructions("CMD")[0]))


def test_every_file_the_image_and_compose_use_exists_and_the_packages_are_copied():
    copied = set()
    for line in instructions("COPY"):
        for source in shlex.split(line)[:-1]:
            assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
            copied.add(source)
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {package.rstrip("*") for package in packages} <= copied
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            if volume.startswith("./"):
                assert (ROOT / volume.split(":")[0]).is_file(), volume


def test_the_setup_can_save_its_credentials_on_a_volume_the_container_user_owns():
    env_file = Path(dockerfile_env()["TANDEM_ENV_FILE"])
    user = instructions("USER")[0]
    assert user != "root"
    assert any(f"chown {user}:{user}" in line and str(env_file.parent) in line for line in instructions("RUN"))
    for name in ("app", "worker", "web"):
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in SERVICES[name]["volumes"] if ":" in volume}
        assert mounts.get(str(env_file.parent)) in COMPOSE["volumes"], f"{name} keeps no credentials"


def test_no_secret_is_written_in_the_compose_file():
    text = (ROOT / "docker-compose.yml").read_text()
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    for name in TANDEM_SERVICES:
        url = SERVICES[name]["environment"]["TANDEM_DATABASE_URL"]
        assert ":${POSTGRES_PASSWORD:?" in url, url
    assert "tandem:tandem@" not in text and "env_file" not in text


def test_the_services_are_configured_checked_and_restarted():
    for name in TANDEM_SERVICES:
        assert SERVICES[name]["environment"]["TANDEM_PUBLIC_URL"], name
    for name, service in SERVICES.items():
        if name != "migrate":
            assert service["restart"] in ("always", "unless-stopped"), name
    assert "/readyz" in " ".join(SERVICES["app"]["healthcheck"]["test"])
    assert "/readyz" in " ".join(SERVICES["web"]["healthcheck"]["test"])
    assert SERVICES["worker"]["healthcheck"]["test"][1:] == ["tandem", "worker", "--check"]


def test_the_worker_scales_by_a_number():
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker
    # The git cache is each worker's own: an anonymous volume, never a named (shared) one.
    assert "/srv/tandem/var" in worker["volumes"]
    assert not any(":/srv/tandem/var" in volume for volume in worker["volumes"])
    assert "container_name" not in SERVICES["web"] and "ports" not in SERVICES["web"]


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".env",
        "tandem-private-key.pem",
        "config/app.pem",
        "tandem.db",
        "tandem.db-wal",
        ".tandem-test/redis/dump.rdb",
        ".git/HEAD",
    ],
)
def test_the_build_context_leaves_out_secrets_and_local_state(path):
    patterns = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    parts = Path(path).parts
    # Docker matches a pattern against the path and, for directories, against each parent.
    assert any(
        fnmatch.fnmatch("/".join(parts[:i]), pattern) or fnmatch.fnmatch(parts[i - 1], pattern)
        for pattern in patterns
        for i in range(1, len(parts) + 1)
    ), path


def test_secrets_can_come_from_files(tmp_path, monkeypatch):
    (tmp_path / "tandem_webhook_secret").write_text("from-a-file\n")
    (tmp_path / "tandem_database_url").write_text("postgresql://tandem:pw@postgres:5432/tandem\n")
    monkeypatch.setenv("TANDEM_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("TANDEM_ENV_FILE", str(tmp_path / "missing.env"))
    monkeypatch.delenv("TANDEM_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("TANDEM_DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.webhook_secret.get_secret_value() == "from-a-file"
    assert settings.database_url == "postgresql://tandem:pw@postgres:5432/tandem"


def test_the_worker_healthcheck_fails_without_a_worker_on_this_host_and_passes_with_one(settings, tmp_path):
    env = worker_env(settings)
    absent = run("worker", "--check", cwd=tmp_path, **{k: v for k, v in env.items() if k.startswith("TANDEM_")})
    assert absent.returncode == 1
    assert f"no `tandem worker` on {socket.gethostname()}" in absent.stderr
    worker = start_worker(env, tmp_path, tmp_path / "worker.log")
    try:
        wait_for(
            lambda: (
                run(
                    "worker", "--check", cwd=tmp_path, **{k: v for k, v in env.items() if k.startswith("TANDEM_")}
                ).returncode
                == 0
            ),
            lambda: (tmp_path / "worker.log").read_text(),
        )
    finally:
        worker.terminate()
        worker.wait(timeout=120)
