"""`tandem sandbox`: a local GitHub on loopback, and Tandem set up against it from scratch.

Everything it makes lives in one directory (`.tandem-sandbox/` by default): the GitHub's git
repositories, Tandem's SQLite database and env file (with the app's credentials), a private
redis-server's data, the git cache and the logs. A new sandbox starts from an empty directory,
because the GitHub's accounts and apps live in memory and end with the process."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx

from tandem.infra.errors import TandemError, known
from tandem.sandbox import registration, scenario
from tandem.sandbox.control import ControlServer
from tandem.sandbox.github import GitHubEmulator
from tandem.sandbox.processes import Child, PrivateRedis, free_port, run_tandem, wait_for

STATE_FILE = "sandbox.json"
MARKER = ".tandem-sandbox"  # says a directory is a sandbox's, so starting again may empty it

Say = Callable[[str], None]


class Sandbox:
    def __init__(self, directory: Path, say: Say):
        self.dir, self.say = directory.resolve(), say
        self.env_file = self.dir / ".env"
        self.redis: PrivateRedis | None = None
        self.emu: GitHubEmulator | None = None  # from start() to stop()
        self.children: list[Child] = []
        self.control: ControlServer | None = None
        self.tandem_url = ""

    # ------------------------------------------------------------------ start

    def start(self) -> Sandbox:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._empty_directory()
        redis_url = self._redis()
        self.emu = GitHubEmulator(root=self.dir / "github").start()
        self.say(f"GitHub sandbox serving at {self.emu.url}")
        self._people()
        self.tandem_url = f"http://127.0.0.1:{free_port()}"
        self._write_settings(redis_url)
        run_tandem(self.env_file, "db", "upgrade")
        self._serve()
        registration.register_app(self.env_file, self.tandem_url, scenario.ORG)
        self.say(
            f"Registered Tandem's GitHub App for {scenario.ORG} through the manifest flow "
            f"(credentials in {self.env_file})"
        )
        self._stop_children()  # a server started without credentials loads them on its next start
        self._serve()
        self.children.append(Child("worker", self.env_file, ["worker"]))
        self.emu.install_app(scenario.ORG, "all", sender=scenario.ADMIN)
        wait_for(self._installed, "Tandem to record its installation on the sandbox", timeout=120)
        self.say(f"Installed the app on {scenario.ORG}; Tandem sees {scenario.FULL_NAME}")
        self.control = ControlServer(self.emu, self.dir)
        self._write_state()

    @property
    def github(self) -> GitHubEmulator:
        return known(self.emu, "the sandbox's GitHub (start() makes it)")

    def _empty_directory(self) -> None:
        if self.dir.exists() and any(self.dir.iterdir()):
            if not (self.dir / MARKER).exists():
                raise TandemError(f"{self.dir} exists and is not a sandbox's directory: choose another with --dir")
            state = self.dir / STATE_FILE
            if state.exists() and _alive(json.loads(state.read_text()).get("pid")):
                raise TandemError(f"a sandbox runs in {self.dir} already; stop it first (Ctrl-C)")
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)  # the app's private key and the control token live here
        (self.dir / MARKER).write_text("A Tandem sandbox: `tandem sandbox` empties and reuses this directory.\n")
        (self.dir / ".gitignore").write_text("*\n")  # never committed, wherever it is made

    def _redis(self) -> str:
        if PrivateRedis.available():
            self.redis = PrivateRedis(self.dir / "redis")
            self.say(
                f"Redis: a private redis-server on {self.redis.address} (password in the sandbox's settings), "
                f"data in {self.dir / 'redis'}"
            )
            return self.redis.url
        url = os.environ.get("TANDEM_REDIS_URL")
        if not url:
            raise TandemError(
                "the sandbox needs Redis: install redis-server (apt-get install redis-server), "
                "or set TANDEM_REDIS_URL to a Redis database the sandbox may use"
            )
        self.say("Redis: no redis-server here, so the sandbox uses the database TANDEM_REDIS_URL names")
        return url

    def _people(self) -> None:
        emu = self.github
        for login in (scenario.ADMIN, *scenario.RATERS, scenario.REVIEWER):
            emu.create_user(login)
        emu.create_org(scenario.ORG, members=[*scenario.RATERS, scenario.REVIEWER], admins=[scenario.ADMIN])
        emu.create_team(scenario.ORG, scenario.TEAM, members=scenario.RATERS)
        emu.create_repository(scenario.ORG, scenario.REPO, files=scenario.MIRROR_FILES)
        self.say(
            f"Organization {scenario.ORG}: mirror {scenario.FULL_NAME} (with .github/tandem.yml), "
            f"team {scenario.TEAM} ({', '.join(scenario.RATERS)}), reviewer {scenario.REVIEWER}"
        )

    def _write_settings(self, redis_url: str) -> None:
        settings = {
            "TANDEM_DATABASE_URL": f"sqlite:///{self.dir / 'tandem.db'}",
            "TANDEM_REDIS_URL": redis_url,
            "TANDEM_GITHUB_API_URL": self.github.url,
            "TANDEM_GITHUB_URL": self.github.url,
            "TANDEM_PUBLIC_URL": self.tandem_url,
            "TANDEM_GIT_CACHE_DIR": str(self.dir / "git-cache"),
            # The sandbox's GitHub enforces no secondary rate limits: no need to pace writes.
            "TANDEM_WRITE_SPACING_SECONDS": "0",
        }
        self.env_file.touch(mode=0o600)
        self.env_file.write_text("".join(f"{name}={value}\n" for name, value in settings.items()))

    def _serve(self) -> None:
        port = self.tandem_url.rsplit(":", 1)[1]
        serve = Child("serve", self.env_file, ["serve", "--port", port])
        self.children.append(serve)

        def answers() -> bool:
            serve.check()  # raises if it exited
            return _answers(f"{self.tandem_url}/healthz")

        wait_for(answers, "`tandem serve` to answer")

    def _installed(self) -> bool:
        for child in self.children:
            child.check()
        return scenario.FULL_NAME in run_tandem(self.env_file, "installations")

    def _write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "github_url": self.github.url,
            "tandem_url": self.tandem_url,
            "control_url": known(self.control, "the control server").url,
            "env_file": str(self.env_file),
            "repo": scenario.FULL_NAME,
            "raters": list(scenario.RATERS),
            "reviewer": scenario.REVIEWER,
        }
        (self.dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    # ------------------------------------------------------------------ running and stopping

    def check(self) -> None:
        """Raise if `tandem serve` or `tandem worker` has exited."""
        for child in self.children:
            child.check()

    def _stop_children(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children = []

    def stop(self) -> None:
        """Stop everything this sandbox started (its directory stays, for a look at the logs)."""
        if self.control is not None:
            self.control.stop()
            self.control = None
        self._stop_children()
        if self.emu is not None:
            self.emu.stop()
            self.emu = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        (self.dir / STATE_FILE).unlink(missing_ok=True)


def load_state(directory: Path) -> dict:
    """A running sandbox's addresses, for the commands that act on it."""
    state = directory / STATE_FILE
    if not state.exists():
        raise TandemError(f"no sandbox runs in {directory}: start one with `tandem sandbox`")
    return json.loads(state.read_text())


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
