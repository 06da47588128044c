"""Real processes for the tests and benchmarks that need them: a throwaway `redis-server` (to
restart at will, never the suite's shared one) and `tandem worker` subprocesses."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

from tandem.infra.settings import Settings
from tandem.sandbox.processes import free_port

TANDEM = str(Path(sys.executable).with_name("tandem"))


def wait_for(condition: Callable[[], object], what: str | Callable[[], str], timeout: float = 120, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what if isinstance(what, str) else what()}"
            )
        time.sleep(every)
    return result


class RedisServer:
    """A redis-server of its own, on a free port, with append-only persistence (fsync on every
    write: a restart loses nothing), in `directory`."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_connect_timeout=1)
        wait_for(self._answers(probe), "redis-server to start", timeout=30)
        probe.close()
        return self

    @staticmethod
    def _answers(probe: redis.Redis) -> Callable[[], bool]:
        def answers() -> bool:
            try:
                return bool(probe.ping())
            except redis.RedisError:
                return False

        return answers

    def stop(self) -> None:
        """SHUTDOWN: the append-only file is flushed, then the server exits."""
        with contextlib.suppress(redis.ConnectionError):  # SHUTDOWN drops the connection: its success
            redis.Redis(port=self.port).shutdown()
        self.process.wait(timeout=30)

    def restart(self, down_for: float) -> None:
        self.stop()
        time.sleep(down_for)  # the outage itself, not a wait for anything
        self.start()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `tandem worker` configured like `settings` (secrets in the
    environment, never in argv)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")} | {
        "TANDEM_DATABASE_URL": settings.database_url,
        "TANDEM_REDIS_URL": settings.redis_url,
        "TANDEM_GIT_CACHE_DIR": str(settings.git_cache_dir),
        "TANDEM_GITHUB_API_URL": settings.github_api_url,
        "TANDEM_WRITE_SPACING_SECONDS": str(settings.write_spacing_seconds),
        "TANDEM_WRITES_PER_MINUTE": str(settings.writes_per_minute),
        "TANDEM_WRITES_PER_HOUR": str(settings.writes_per_hour),
        "TANDEM_JOB_RETRY_INTERVALS": str(settings.job_retry_intervals),
        "TANDEM_ENV_FILE": str(settings.env_file),
    }
    if settings.app_id:
        env["TANDEM_APP_ID"] = str(settings.app_id)
    if settings.private_key is not None:
        env["TANDEM_PRIVATE_KEY"] = settings.private_key.get_secret_value()
    if settings.webhook_secret is not None:
        env["TANDEM_WEBHOOK_SECRET"] = settings.webhook_secret.get_secret_value()
    return env | extra


def start_worker(env: dict[str, str], cwd: Path, log: Path, *options: str) -> subprocess.Popen:
    with open(log, "ab") as output:
        return subprocess.Popen([TANDEM, "worker", *options], env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL: no cleanup of any kind, as when the machine or the OOM killer takes it."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def stop(process: subprocess.Popen) -> int:
    """SIGTERM, as systemd and docker stop it; returns its exit status."""
    if process.poll() is None:
        process.terminate()
    return process.wait(timeout=60)
