"""`tandem sandbox` (run one; act in it as a rater or reviewer) and `tandem demo`."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli.common import plain_errors
from tandem.infra.errors import TandemError
from tandem.sandbox import scenario
from tandem.sandbox.processes import interrupt_on_sigterm, run_tandem
from tandem.sandbox.scenario import DEFAULT_DIR

if TYPE_CHECKING:
    from tandem.sandbox.runtime import Sandbox

# The sandbox's runtime and control (its GitHub emulator) are imported by the commands that use
# them: every other `tandem` command would pay for importing them.

sandbox_cli = typer.Typer(
    help="A local GitHub on loopback with Tandem set up against it; act in it as a rater.",
    invoke_without_command=True,
)
DIR_OPTION = typer.Option(DEFAULT_DIR, "--dir", help="The sandbox's directory (all its state).")
SIDE = typer.Argument(..., help="A or B.")


def say(message: str) -> None:
    typer.echo(f"[sandbox] {message}")


@sandbox_cli.callback()
@plain_errors
def run(ctx: typer.Context, directory: Path = DIR_OPTION) -> None:
    """Start the sandbox: a local GitHub, Tandem registered and installed on it, `tandem serve`
    and `tandem worker` running, until Ctrl-C or SIGTERM stops everything it started."""
    if ctx.invoked_subcommand is not None:
        return
    from tandem.sandbox.runtime import Sandbox

    interrupt_on_sigterm()
    sandbox = Sandbox(directory, say)
    try:
        sandbox.start()
        _next_steps(sandbox)
        while True:
            sandbox.check()
            threading.Event().wait(1)
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM: the way to stop a sandbox
    finally:
        say("stopping")
        sandbox.stop()


def _next_steps(sandbox: Sandbox) -> None:
    env = f"TANDEM_ENV_FILE={sandbox.env_file}"
    where = "" if sandbox.dir == DEFAULT_DIR.resolve() else f" --dir {sandbox.dir}"
    typer.echo(f"""
Tandem runs at {sandbox.tandem_url} against the GitHub sandbox at {sandbox.github.url}.
Next, in another shell:

  {env} tandem task submit examples/task.yml       # opens two draft PRs on {scenario.FULL_NAME}
  {env} tandem task show 1
  tandem sandbox comment 1 A "/prefer A clearly" --as {scenario.RATERS[0]}{where}
  tandem sandbox comment 1 B "/rate B correctness=3 security=2" --as {scenario.RATERS[1]}{where}
  tandem sandbox line-comment 1 B src/app.py 5 "pip still reads --index-url here" --as {scenario.RATERS[1]}{where}
  tandem sandbox review 1 A approve "/approve @{scenario.RATERS[0]}" --as {scenario.REVIEWER}{where}
  tandem sandbox push 1 A src/app.py --as {scenario.RATERS[0]}{where}
  {env} tandem export --format jsonl judgments.jsonl

Raters: {", ".join(scenario.RATERS)} (team {scenario.TEAM}); reviewer: {scenario.REVIEWER}.
Logs: {sandbox.dir / "logs"}. Ctrl-C stops everything.""")


def _act(directory: Path, task: int, side: str, login: str, action: dict) -> dict:
    """Perform `action` as `login` on the PR of the task's side, in the sandbox running there."""
    directory = directory.resolve()
    from tandem.sandbox import control
    from tandem.sandbox.runtime import load_state

    state = load_state(directory)
    letter = side.upper()
    if letter not in ("A", "B"):
        raise TandemError(f"side {side!r}: say A or B")
    view = json.loads(run_tandem(Path(state["env_file"]), "task", "show", str(task)))
    url = (view.get("pull_requests") or {}).get(letter)
    if url is None:
        raise TandemError(f"task {task} has no PR for option {letter} yet (status {view.get('status')})")
    repo, number = _pull_of(url, state["github_url"])
    return control.send(state["control_url"], directory, {"login": login, "repo": repo, "number": number, **action})


def _pull_of(url: str, github_url: str) -> tuple[str, int]:
    owner, name, _, number = url.removeprefix(github_url).strip("/").split("/")
    return f"{owner}/{name}", int(number)


def _done(answer: dict) -> None:
    typer.echo(answer.get("html_url") or json.dumps(answer))


AS_OPTION = typer.Option(..., "--as", help="The user who acts (a rater or reviewer of the sandbox).")


@sandbox_cli.command("comment")
@plain_errors
def comment(
    task: int, side: str = SIDE, body: str = typer.Argument(...), login: str = AS_OPTION, directory: Path = DIR_OPTION
) -> None:
    """Comment on a task's PR as a user: votes, scores, follow-ups (`/help` lists them)."""
    _done(_act(directory, task, side, login, {"action": "comment", "body": body}))


@sandbox_cli.command("review")
@plain_errors
def review(
    task: int,
    side: str = SIDE,
    event: str = typer.Argument(..., help="approve, request-changes or comment."),
    body: str = typer.Argument(""),
    login: str = AS_OPTION,
    directory: Path = DIR_OPTION,
) -> None:
    """Submit a review on a task's PR as a user."""
    from tandem.sandbox import control

    if event not in control.REVIEW_EVENTS:
        raise TandemError(f"review {event!r}: say one of {', '.join(control.REVIEW_EVENTS)}")
    _done(_act(directory, task, side, login, {"action": "review", "event": event, "body": body}))


@sandbox_cli.command("line-comment")
@plain_errors
def line_comment(
    task: int,
    side: str = SIDE,
    path: str = typer.Argument(..., help="A file of the diff."),
    line: int = typer.Argument(..., help="A line of the new file, in the diff."),
    body: str = typer.Argument(...),
    login: str = AS_OPTION,
    directory: Path = DIR_OPTION,
) -> None:
    """Comment on a line of a task's PR diff as a user (a critique of that side)."""
    _done(_act(directory, task, side, login, {"action": "line-comment", "path": path, "line": line, "body": body}))


@sandbox_cli.command("push")
@plain_errors
def push(
    task: int,
    side: str = SIDE,
    files: list[Path] = typer.Argument(..., help="Local files, pushed at the same paths."),
    login: str = AS_OPTION,
    message: str = typer.Option("Update files", help="The commit message."),
    directory: Path = DIR_OPTION,
) -> None:
    """Push a commit of local files to a task's PR branch as a user (as a rater who edits it would)."""
    contents = {str(path): path.read_text() for path in files}
    answer = _act(directory, task, side, login, {"action": "push", "files": contents, "message": message})
    typer.echo(f"pushed {answer['sha']} to {answer['branch']}")


def register(cli: typer.Typer) -> None:
    from tandem.sandbox.demo import demo

    cli.add_typer(sandbox_cli, name="sandbox")
    cli.command("demo")(plain_errors(demo))
