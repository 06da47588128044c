"""The files that ship Tandem (Dockerfile, compose, app.yml, README, scripts) stay correct.

There is no Docker engine here, so these are read and checked against the code they run.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
from pathlib import Path

import yaml
from typer.main import get_command

from cli.main import cli

ROOT = Path(__file__).parents[1]
REFERENCE = json.loads((ROOT / "tests" / "fixtures" / "manifest-reference.json").read_text())
# https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest#github-app-manifest-parameters
MANIFEST_PARAMETERS = {
    "name",
    "url",
    "hook_attributes",
    "redirect_url",
    "callback_urls",
    "setup_url",
    "description",
    "public",
    "default_events",
    "default_permissions",
    "request_oauth_on_install",
    "setup_on_update",
}


def tandem_commands() -> set[tuple[str, ...]]:
    """Every runnable `tandem ...` command path, from the Typer app itself."""
    found: set[tuple[str, ...]] = set()

    def walk(command, path):
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
        else:
            found.add(path)

    walk(get_command(cli), ())
    return found


def assert_runs_tandem(argv: list[str]) -> None:
    assert argv[0] == "tandem", argv
    commands = tandem_commands()
    words = tuple(word for word in argv[1:] if not word.startswith("-"))
    assert any(words[: len(path)] == path for path in commands), f"no such command: {argv}"


def test_dockerfile_runs_a_real_command_as_a_non_root_user_with_git():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert lines[next(i for i, line in enumerate(lines) if line.startswith("FROM"))].endswith("-slim")
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert any("apt-get install" in line and " git" in line for line in lines)
    [cmd] = [line for line in lines if line.startswith("CMD ")]
    assert_runs_tandem(json.loads(cmd.removeprefix("CMD ")))
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_compose_services_run_real_commands_on_postgres_and_redis():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"app", "worker", "redis", "postgres"} <= services.keys()
    for name in ("app", "worker", "migrate"):
        assert_runs_tandem(services[name]["command"])
        environment = services[name]["environment"]
        assert environment["TANDEM_DATABASE_URL"].startswith("postgresql://")
        assert environment["TANDEM_REDIS_URL"].startswith("redis://redis:")
    assert services["worker"]["command"][:2] == ["tandem", "worker"]


def test_manifest_uses_only_documented_parameters_and_least_privilege():
    manifest = yaml.safe_load((ROOT / "tandem" / "app.yml").read_text())
    assert set(manifest) <= MANIFEST_PARAMETERS
    for permission, level in manifest["default_permissions"].items():
        assert level in REFERENCE["permissions"][permission], permission
    assert manifest["default_permissions"] == {
        "metadata": "read",
        "contents": "write",
        "pull_requests": "write",
        "issues": "write",
        "checks": "write",
        "members": "read",
        "statuses": "read",
    }
    assert set(manifest["default_events"]) <= set(REFERENCE["events"])
    assert {
        "issue_comment",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "installation_repositories",
        "membership",
        "team",
        "organization",
        "check_run",
        "check_suite",
        "status",
    } <= set(manifest["default_events"])
    assert manifest["public"] is False


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", text, re.S)
    assert first_block and text.index(first_block.group(0)) < 600, "the README must open with the two commands"
    return [line for line in first_block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) == 2
    run, test = (shlex.split(command.split("#")[0]) for command in commands)
    for argv in (run, test):
        assert (ROOT / argv[0]).is_file(), argv
    assert test[0] in (ROOT / ".ci" / "run").read_text()


def test_scripts_call_only_existing_tandem_commands():
    calls = {
        (script.name, match.group(1))
        for script in (ROOT / "scripts").iterdir()
        for match in re.finditer(r"\.venv/bin/(tandem [^\n&|;]*)", script.read_text())
    }
    # The scripts that run Tandem are read (the others have nothing to check).
    assert {"demo", "start"} <= {script for script, _call in calls}
    for _script, call in sorted(calls):
        argv = [word for word in shlex.split(call.split("#")[0]) if not word.startswith("$")]
        assert_runs_tandem(argv)


def test_the_shipped_deployments_restart_the_app_and_the_worker():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("app", "worker"):
        assert compose[name]["restart"] in ("always", "unless-stopped"), name
    for name, command in (("tandem-worker", "worker"), ("tandem-serve", "serve")):
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.optionxform = str
        unit.read_string((ROOT / "deploy" / "systemd" / f"{name}.service").read_text())
        argv = shlex.split(unit["Service"]["ExecStart"])
        assert Path(argv[0]).name == "tandem" and argv[1] == command
        assert_runs_tandem(["tandem", *argv[1:]])
        assert unit["Service"]["Restart"] == "always"
        assert unit["Unit"]["StartLimitIntervalSec"] == "0"  # never given up on
        assert f"deploy/systemd/{name}.service" in (ROOT / "README.md").read_text()
