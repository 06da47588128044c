"""Redis as a test sees it from outside: what keys a run left behind, and private redis-server
processes for tests that change a server's configuration (never the shared one)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis


def footprint(connection: redis.Redis) -> dict[str, int]:
    """Every key of the connection's database, with the bytes it takes (MEMORY USAGE)."""
    return {key.decode(): connection.memory_usage(key, samples=0) or 0 for key in connection.scan_iter(count=1000)}


class RedisServer:
    """A redis-server of our own on a free loopback port, in a scratch directory."""

    def __init__(self, directory: Path, *options: str):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            *options,
        ]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisServer:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:  # (start-up: there is nothing to wait on but the port answering)
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start: {self.command}") from None
                time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        self.process.kill()  # a scratch server: nothing in it to keep
        self.process.wait(timeout=10)
