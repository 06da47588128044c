"""The processes a sandbox starts (a private redis-server, `tandem serve`, `tandem worker`) and
runs (`tandem` commands), all configured by the sandbox's own env file and nothing else."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tandem.infra.errors import TandemError

if TYPE_CHECKING:
    import redis

TANDEM = [sys.executable, "-m", "tandem"]


def interrupt_on_sigterm() -> None:
    """SIGTERM (kill, systemd, docker) stops a sandbox as Ctrl-C does, cleanup included. Its
    children run in sessions of their own, so that a terminal's Ctrl-C reaches the sandbox alone,
    which then stops them in order."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60, every: float = 0.2):
    """Poll until `condition` holds; a sandbox step that never completes is an error naming it."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise TandemError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return result


def tandem_env(env_file: Path) -> dict[str, str]:
    """The environment of a sandbox's `tandem` process: its env file only. The caller's own
    TANDEM_* variables would override the file (environment wins), pointing it at real services."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    return env | {"TANDEM_ENV_FILE": str(env_file), "PYTHONUNBUFFERED": "1"}


def run_tandem(env_file: Path, *args: str, stdin: str | None = None) -> str:
    """Run `tandem ARGS` against the sandbox; its output, or an error with what it said."""
    done = subprocess.run(
        [*TANDEM, *args],
        env=tandem_env(env_file),
        cwd=env_file.parent,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise TandemError(f"`tandem {args[0]}` failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


class Child:
    """A long-running `tandem` process of the sandbox, its output in a log file."""

    def __init__(self, name: str, env_file: Path, args: list[str], extra_env: dict[str, str] | None = None):
        self.name, self.log = name, env_file.parent / "logs" / f"{name}.log"
        self.log.parent.mkdir(exist_ok=True)
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                [*TANDEM, *args],
                env=tandem_env(env_file) | (extra_env or {}),
                cwd=env_file.parent,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check(self) -> None:
        if self.process.poll() is not None:
            raise TandemError(f"`tandem {self.name}` exited ({self.process.returncode}); see {self.log}")

    def stop(self) -> None:
        """SIGTERM, as systemd would; SIGKILL if it has not exited in 30 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class PrivateRedis:
    """A redis-server of the sandbox's own, on a free loopback port, its data in the sandbox
    directory: the sandbox never reads or writes the developer's Redis.

    It asks for a password: a job names the function it runs, so whoever can queue one on a
    worker's Redis runs code as the worker's user; loopback alone lets every local user in. The
    password is in a 0600 config file and in the sandbox's 0600 settings, never in an argument."""

    def __init__(self, directory: Path):
        self.directory, self.port = directory, free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.password = secrets.token_urlsafe(24)
        config = directory / "redis.conf"
        config.touch(mode=0o600)
        config.chmod(0o600)
        config.write_text(f"requirepass {self.password}\n")
        self.process = subprocess.Popen(
            [
                "redis-server",
                str(config),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(directory),
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        import redis  # here: every `tandem` command imports this module, few start a sandbox

        probe = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=1)
        try:
            wait_for(lambda: self._answers(probe), "the sandbox's redis-server to start", timeout=30)
        finally:
            probe.close()

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        """With the password: for the sandbox's settings file only, never to print."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _answers(self, probe: redis.Redis) -> bool:
        import redis

        if self.process.poll() is not None:
            raise TandemError(f"redis-server exited ({self.process.returncode}) on port {self.port}")
        try:
            return bool(probe.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # redis-server flushes its append-only file on SIGTERM
            self.process.wait(timeout=30)
