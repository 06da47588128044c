"""The scripts as a user runs them: scripts/start honours PORT and HOST, and `kill -TERM` stops the
app and the worker with it (a script that waits on a foreground server runs its trap only after);
scripts/install says what to install where Python cannot make a venv."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tandem.infra.settings import Settings
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
    with open(tmp_path / "start.log", "w+") as log:
        script = subprocess.Popen(
            [ROOT / "scripts" / "start"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_for(
                lambda: answers(f"http://127.0.0.1:{port}/healthz") or script.poll() is not None, "the app to answer"
            )
            assert script.poll() is None, (tmp_path / "start.log").read_text()
            yield script, port, tmp_path / "start.log"
        finally:
            if script.poll() is None:
                os.killpg(script.pid, signal.SIGKILL)
                script.wait()


def test_term_stops_the_app_and_the_worker(started):
    script, port, log = started
    children = wait_for(lambda: (found := descendants(script.pid)) and len(found) >= 2 and found, "server and worker")
    script.send_signal(signal.SIGTERM)
    assert script.wait(timeout=300) == 143
    assert not [pid for pid in children if alive(pid)], log.read_text()
    assert not answers(f"http://127.0.0.1:{port}/healthz")


def test_the_setup_link_is_at_the_port_it_listens_on(started):
    _script, port, log = started
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
    done = subprocess.run(
        [tmp_path / "scripts" / "install"],
        env=os.environ | {"PYTHON": str(python)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert done.returncode == 1
    assert f"sudo apt-get install python{version}-venv" in done.stderr
    assert not (tmp_path / ".venv").exists()


def test_the_test_script_stops_on_a_lint_finding(tmp_path):
    """scripts/test runs the static-analysis gate first, and a finding fails the run before any test starts."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copy(ROOT / "scripts" / "test", scripts / "test")
    for name, body in {"install": "exit 0", "lint": "echo the gate ran; exit 1"}.items():
        (scripts / name).write_text(f"#!/bin/sh\n{body}\n")
        (scripts / name).chmod(0o755)
    done = subprocess.run([scripts / "test"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == "the gate ran\n"


@pytest.mark.parametrize(
    "source",
    [
        "import os\n",  # ruff check: an unused import
        "x = ( 1 )\n",  # ruff format: not as the formatter writes it
        "x: int = 'one'\n",  # mypy: a type error
    ],
)
def test_lint_fails_on_a_lint_format_or_type_error(tmp_path, source):
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    for package in ("app", "workers", "cli", "tandem", "tests"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    lint = [tmp_path / "scripts" / "lint"]
    assert subprocess.run(lint, capture_output=True, timeout=300).returncode == 0
    (tmp_path / "tandem" / "module.py").write_text(source)
    assert subprocess.run(lint, capture_output=True, timeout=300).returncode == 1
