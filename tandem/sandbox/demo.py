"""`tandem demo`: the whole loop on a fresh sandbox, narrated: a task opens two blinded PRs, two
raters read them, vote, score and comment, one asks for a follow-up that the reference runner
answers with the example agent, both vote again, a reviewer approves, and the export and the
statistics come out. Any step that fails stops it with a message saying which (exit status 1)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tandem.infra.errors import TandemError, known
from tandem.sandbox import scenario
from tandem.sandbox.processes import interrupt_on_sigterm, run_tandem, wait_for

if TYPE_CHECKING:
    from tandem.sandbox.runtime import Sandbox

# The runtime and control (the GitHub emulator) are imported by the demo when it runs, not by
# every `tandem` command that registers it.

STEPS = 8
# The reference runner's example agent (examples/agents/echo_agent.py), run from the package so that
# the demo works from any installation of Tandem.
ECHO_AGENT = "tandem.sandbox.echo_agent"


class Demo:
    def __init__(self, sandbox: Sandbox):
        self.sandbox, self.env = sandbox, sandbox.env_file
        self.work = sandbox.dir / "demo"
        self.work.mkdir()
        self.step = 0

    def narrate(self, message: str) -> None:
        self.step += 1
        typer.echo(f"\n[{self.step}/{STEPS}] {message}")

    def tandem(self, *args: str) -> str:
        return run_tandem(self.env, *args)

    # ------------------------------------------------------------------ what people do

    def act(self, login: str, letter: str, action: dict) -> dict:
        repo, number = self.pulls[letter]
        from tandem.sandbox import control

        return control.perform(self.sandbox.github, {"login": login, "repo": repo, "number": number, **action})

    def say(self, login: str, letter: str, body: str) -> None:
        self.act(login, letter, {"action": "comment", "body": body})
        first, *more = body.splitlines()
        typer.echo(f"  {login} on Option {letter}: {first}" + (f" (+{len(more)} lines)" if more else ""))

    def side_text(self, letter: str) -> str:
        """src/app.py as the PR shows it: what a rater reads before voting."""
        repo, number = self.pulls[letter]
        emu = self.sandbox.github
        git = emu.repo(repo).git
        head = known(git.resolve(emu.pull(repo, number).pull_request.head_ref), f"the head of {repo}#{number}")
        return git.read_blob(known(git.entry_at(head, "src/app.py"), "src/app.py at the head").sha).decode()

    # ------------------------------------------------------------------ what Tandem shows

    def task(self) -> dict:
        return json.loads(self.tandem("task", "show", str(self.task_id)))

    def judgments(self) -> list[dict]:
        out = self.work / "judgments.jsonl"
        self.tandem("export", "--format", "jsonl", str(out))
        return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]

    def votes_in_round(self, number: int, count: int) -> None:
        wait_for(
            lambda: (
                sum(1 for j in self.judgments() if j["kind"] == "judgment" and j["round"] == number and j["current"])
                >= count
            ),
            f"Tandem to record {count} votes in round {number}",
        )

    def round_status(self, number: int, status: str) -> None:
        def reached() -> bool:
            rounds = self.task()["rounds"]
            return len(rounds) >= number and rounds[number - 1]["status"] == status

        wait_for(reached, f"round {number} to be {status}", timeout=120)

    # ------------------------------------------------------------------ the walk-through

    def run(self) -> None:
        self.narrate("Submitting a task: fix the command injection through pip's options in src/app.py")
        task_file = self.work / "task.json"
        task_file.write_text(json.dumps(scenario.DEMO_TASK, indent=2))
        typer.echo(f"  prompt: {scenario.DEMO_TASK['prompt']}")
        answer = self.tandem("task", "submit", str(task_file), "--team", scenario.DEMO_TEAM)
        self.task_id = int(answer.strip())
        wait_for(
            lambda: len(self.task().get("pull_requests") or {}) == 2 and self.task()["status"] == "open",
            "both pull requests to open",
            timeout=120,
        )
        urls = self.task()["pull_requests"]
        self.pulls = {letter: _pull_of(url) for letter, url in urls.items()}
        typer.echo(f"  task {self.task_id} is open: Option A {urls['A']}, Option B {urls['B']}")

        self.narrate("Two raters read both diffs, vote and score (round 1)")
        # A rater tells the options apart by reading them: the one that still hands the package to
        # a shell (quoted, but pip still reads `--index-url=...` as an option) is the weaker one.
        weak = "A" if "shlex.quote" in self.side_text("A") else "B"
        strong = "B" if weak == "A" else "A"
        alice, bob = scenario.RATERS
        self.say(
            alice,
            strong,
            f"/prefer {strong} clearly\n/rate {strong} correctness=5 security=5 maintainability=4\n"
            f"/rate {weak} correctness=3 security=2 maintainability=4",
        )
        self.say(
            bob,
            weak,
            f"/prefer {strong} slightly\n/rate {strong} correctness=4 security=5 maintainability=3\n"
            f"/rate {weak} correctness=4 security=2 maintainability=5",
        )
        self.act(
            bob,
            weak,
            {
                "action": "line-comment",
                "path": "src/app.py",
                "line": 6,
                "body": "Quoted for the shell, but pip still reads `--index-url=...` as an option.",
            },
        )
        typer.echo(f"  {bob} commented on line 6 of src/app.py in Option {weak}")
        self.votes_in_round(1, 2)
        typer.echo("  Tandem recorded both votes")

        self.narrate(f"{alice} asks both models for a follow-up")
        self.say(alice, strong, f"/followup {scenario.FOLLOWUP}")
        self.round_status(2, "awaiting_outputs")
        typer.echo("  round 2 awaits the models' answers")

        self.narrate("The reference runner answers it with the example agent (tandem runner --once)")
        self.answer_round()
        self.round_status(2, "open")
        typer.echo("  both PRs have a new commit; round 2 is open")

        self.narrate("Both raters vote again on the new heads (round 2)")
        self.say(alice, strong, f"/prefer {strong} clearly")
        self.say(bob, strong, f"/prefer {strong} slightly")
        self.votes_in_round(2, 2)
        typer.echo("  Tandem recorded both votes")

        self.narrate(f"{scenario.REVIEWER} reviews the raters' work and approves it")
        body = "\n".join(f"/approve @{rater}" for rater in scenario.RATERS)
        self.act(scenario.REVIEWER, strong, {"action": "review", "event": "approve", "body": body})
        typer.echo(
            f"  {scenario.REVIEWER}'s review of Option {strong} approves both votes: " + ", ".join(body.splitlines())
        )
        wait_for(lambda: self.task()["status"] == "closed", "the task to be judged and both PRs closed", timeout=120)
        if (reason := self.task()["rounds"][-1]["closed_reason"]) != "judged":
            raise TandemError(f"the task closed with its last round {reason}, not judged")
        typer.echo(f"  task {self.task_id} is judged; both PRs are closed, never merged")

        self.narrate("Statistics (tandem stats)")
        typer.echo(self.tandem("stats", "--bootstrap", "200").rstrip())

        self.narrate(f"The export (tandem export): {self.work / 'judgments.jsonl'}")
        self.print_judgments()

    def answer_round(self) -> None:
        token_file = self.work / "runner.token"
        token_file.touch(mode=0o600)
        token_file.write_text(
            self.tandem(
                "token", "create", "--name", "demo-runner", "--team", scenario.DEMO_TEAM, "--scope", "runner"
            ).strip()
        )
        command = f"{shlex.quote(sys.executable)} -m {ECHO_AGENT}"
        self.tandem(
            "runner", "--url", self.sandbox.tandem_url, "--token-file", str(token_file), "--command", command, "--once"
        )
        typer.echo(
            "  the runner ran the example agent (examples/agents/echo_agent.py) for each model and "
            "submitted both outputs"
        )

    def print_judgments(self) -> None:
        records = [j for j in self.judgments() if j["kind"] == "judgment"]
        for j in records:
            typer.echo(
                f"  judgment {j['id']}: round {j['round']}, {j['rater_login']} prefers {j['verdict']}"
                f" {j['strength'] or ''} ({j['model_a']} as A, {j['model_b']} as B), review: "
                f"{j['review_state']}, current: {j['current']}"
            )
        typer.echo(f"\n{len(records)} judgments recorded. The sandbox stops now; `tandem sandbox` keeps one running.")


def _pull_of(url: str) -> tuple[str, int]:
    owner, name, _, number = url.split("/")[-4:]
    return f"{owner}/{name}", int(number)


def demo(
    directory: Path = typer.Option(Path(".tandem-demo"), "--dir", help="The demo sandbox's directory (emptied first)."),
) -> None:
    """Run the whole loop on a fresh local sandbox, narrated, and print the judgments."""
    typer.echo("Tandem demo: a local GitHub sandbox, Tandem against it, and a task judged end to end.")
    interrupt_on_sigterm()
    from tandem.sandbox.runtime import Sandbox

    sandbox = Sandbox(directory, lambda message: typer.echo(f"  {message}"))
    try:
        typer.echo(f"\n[0/{STEPS}] Starting the sandbox in {sandbox.dir}")
        sandbox.start()
        Demo(sandbox).run()
    finally:
        sandbox.stop()
