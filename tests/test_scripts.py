"""The scripts as a user runs them: scripts/start honours PORT and HOST, and `kill -TERM` stops the
app and the worker with it (a script that waits on a foreground server runs its trap only after);
scripts/install says what to install where Python cannot make a venv."""

from __future__ import annotations

import os
import signal
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tandem.settings import Settings
from tests.processes import free_port, wait_for

ROOT = Path(__file__).parents[1]


def descendants(pid: int) -> set[int]:
    """Every process below pid, from the kernel's children lists."""
    found, pending = set(), [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = {int(child) for child in (task / "children").read_text().split()}
            except (FileNotFoundError, ProcessLookupError):
                continue
            pending.extend(children - found)
            found |= children
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def started(tmp_path, redis_url):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")} | {
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "REDIS_PORT": str(urlsplit(redis_url).port),
        "TANDEM_REDIS_URL": redis_url,
        "TANDEM_DATABASE_URL": f"sqlite:///{tmp_path / 'tandem.db'}",
        "TANDEM_ENV_FILE": str(tmp_path / ".env"),
        "TANDEM_GIT_CACHE_DIR": str(tmp_path / "git"),
    }
    log = open(tmp_path / "start.log", "w+")
    script = subprocess.Popen([ROOT / "scripts" / "start"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz") or script.poll() is not None, "the app to answer")
        assert script.poll() is None, (tmp_path / "start.log").read_text()
        yield script, port, tmp_path / "start.log"
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()
        log.close()


def test_term_stops_the_app_and_the_worker(started):
    script, port, log = started
    children = wait_for(lambda: (found := descendants(script.pid)) and len(found) >= 2 and found, "server and worker")
    script.send_signal(signal.SIGTERM)
    assert script.wait(timeout=300) == 143
    assert not [pid for pid in children if alive(pid)], log.read_text()
    assert not answers(f"http://127.0.0.1:{port}/healthz")


def test_the_setup_link_is_at_the_port_it_listens_on(started):
    script, port, log = started
    assert f"http://localhost:{port}/setup?key=" in log.read_text()


def test_the_public_url_follows_port_unless_it_is_set(monkeypatch):
    monkeypatch.setenv("PORT", "9123")
    assert Settings(_env_file=None).public_url == "http://localhost:9123"
    assert Settings(_env_file=None, public_url="https://tandem.example/").public_url == "https://tandem.example"


def test_install_names_the_package_that_gives_python_its_venv(tmp_path):
    """Debian's python3 without python3-venv has no ensurepip: the script says what to apt-get."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "install", tmp_path / "scripts" / "install")
    python = tmp_path / "python3"
    python.write_text(f'#!/bin/sh\ncase "$*" in *ensurepip*) exit 1 ;; esac\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    done = subprocess.run([tmp_path / "scripts" / "install"], env=os.environ | {"PYTHON": str(python)},
                          capture_output=True, text=True, timeout=60)
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert done.returncode == 1
    assert f"sudo apt-get install python{version}-venv" in done.stderr
    assert not (tmp_path / ".venv").exists()
