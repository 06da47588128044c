"""Tandem as a user installs it: a wheel built from the tracked files, in a venv of its own.

An editable install reads everything from the source tree, so it cannot tell whether the wheel
carries what Tandem reads at run time (the manifest, the migrations). This builds the wheel from
a copy of the files git knows, installs it (not editable) into a fresh venv and runs the CLI from
there, in a directory away from the source.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def run(argv: list, cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv with Tandem installed from its wheel; returns its bin directory."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], ROOT).split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():  # a file deleted but not yet staged is still listed
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", base / "dist", source], base)
    [wheel] = (base / "dist").glob("tandem-*.whl")
    venv.EnvBuilder(with_pip=True).create(base / "venv")
    bin_dir = base / "venv" / "bin"
    run([bin_dir / "python", "-m", "pip", "install", "-q", wheel], base)
    return bin_dir


def clean_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TANDEM_", "PYTHON"))}
    return env | {
        "TANDEM_DATABASE_URL": f"sqlite:///{tmp_path / 'tandem.db'}",
        "TANDEM_ENV_FILE": str(tmp_path / ".env"),
    }


def test_the_installed_cli_runs_and_creates_its_database(installed, tmp_path):
    env = clean_env(tmp_path)
    usage = run([installed / "tandem", "--help"], tmp_path, env)
    assert all(command in usage for command in ("serve", "worker", "setup", "db"))
    assert run([installed / "tandem", "db", "upgrade"], tmp_path, env).startswith("database at ")
    assert (tmp_path / "tandem.db").is_file()


def test_the_installed_package_loads_the_manifest_from_itself(installed, tmp_path):
    probe = (
        "import tandem, json; from tandem.infra import app_registration; from tandem.infra.settings import Settings; "
        "m = app_registration.manifest("
        "Settings(_env_file=None, public_url='https://tandem.example'), 'https://tandem.example'); "
        "print(json.dumps([tandem.__file__, m['name'], m['hook_attributes']['url']]))"
    )
    module, name, hook = json.loads(run([installed / "python", "-c", probe], tmp_path, clean_env(tmp_path)))
    assert Path(module).is_relative_to(installed.parent), module  # the wheel's copy, not the source tree's
    assert name == "Tandem" and hook == "https://tandem.example/webhooks/github"
