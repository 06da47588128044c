"""`tandem round submit`, `tandem runner` and `tandem runner-events`: the model runner's commands."""

from __future__ import annotations

import logging
import os
import queue as queues
import time
from pathlib import Path

import typer

from cli.common import cli_user, fail, load_services, plain_errors, requeue, submit_file

round_cli = typer.Typer(help="Rounds of a task: the models' answers to each prompt.", no_args_is_help=True)
events_cli = typer.Typer(help="Outgoing webhooks to the model runner (TANDEM_RUNNER_URL).", no_args_is_help=True)

TOKEN_ENV = "TANDEM_RUNNER_TOKEN"
SECRET_ENV = "TANDEM_RUNNER_SECRET"


@round_cli.command("submit")
@plain_errors
def round_submit(
    task_id: int = typer.Argument(..., help="The task's id."),
    number: int = typer.Argument(..., help="The round awaiting outputs."),
    path: Path = typer.Argument(..., help="YAML or JSON: {outputs: [{model, patch | files}, ...]}."),
) -> None:
    """Hand Tandem the models' outputs for a round (as POST .../rounds/N/outputs does)."""
    from tandem.domain import rounds
    from tandem.domain.runner_protocol import load_outputs_file

    submit_file(
        path,
        lambda text: rounds.submit_outputs(
            load_services(), task_id, number, load_outputs_file(text), submitted_by=cli_user()
        ),
    )


def _secret_text(file: Path | None, env: str) -> str | None:
    if file is not None:
        try:
            return file.read_text().strip()
        except OSError as exc:
            fail(f"{file}: {exc.strerror}")
    return os.environ.get(env) or None


def runner(
    command: str = typer.Option(
        ..., "--command", help="The agent to run in each model's worktree, e.g. 'python3 agent.py'."
    ),
    url: str = typer.Option(
        ..., "--url", envvar="TANDEM_URL", help="Tandem's address, e.g. https://tandem.example.org."
    ),
    token_file: Path = typer.Option(
        None, "--token-file", help=f"File holding a `runner` API token (or set {TOKEN_ENV})."
    ),
    poll_seconds: float = typer.Option(30.0, "--poll-seconds", min=0.1, help="Seconds between two looks for rounds."),
    timeout: float = typer.Option(1800.0, "--timeout", min=1, help="Seconds the command may run for each model."),
    listen: str = typer.Option(None, "--listen", help="HOST:PORT to receive Tandem's webhooks on (also polls)."),
    secret_file: Path = typer.Option(None, "--secret-file", help=f"The webhooks' secret (or set {SECRET_ENV})."),
    retry_failed_after: float = typer.Option(
        600.0, "--retry-failed-after", min=0, help="Seconds before a round that failed is tried again."
    ),
    once: bool = typer.Option(False, "--once", help="Answer what awaits now, then exit."),
) -> None:
    """Answer every round awaiting outputs by running COMMAND once per model.

    COMMAND runs (never through a shell) in a temporary worktree holding the model's current code,
    with TANDEM_MODEL, TANDEM_TASK, TANDEM_ROUND and TANDEM_PROMPT set and the conversation as JSON
    on stdin. What it changes there is that model's answer.

    Example: TANDEM_RUNNER_TOKEN=... tandem runner --url http://localhost:8000 \
--command 'python3 examples/agents/echo_agent.py'
    """
    from cli.reference_runner import Runner, TandemClient, parse_command

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request drowns the runner's own
    token = _secret_text(token_file, TOKEN_ENV)
    if not token:
        fail(f"give a `runner` API token: set {TOKEN_ENV} or use --token-file (never on the command line)")
    try:
        argv = parse_command(command)
    except ValueError as exc:
        fail(f"--command: {exc}")
    work = Runner(TandemClient(url, token), argv, timeout, retry_failed_after)
    listener = _listener(listen, secret_file) if listen else None
    if listener is not None:
        listener.start()
        logging.getLogger("cli.reference_runner").info("listening for Tandem's webhooks on %s", listener.address)
    try:
        while True:
            work.poll_once()
            if once:
                return
            _wait(work, listener, poll_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        if listener is not None:
            listener.stop()


def _listener(listen: str, secret_file: Path | None):
    from cli.reference_runner import EventListener

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        fail(f"--listen {listen!r}: use HOST:PORT, like 127.0.0.1:8700")
    secret = _secret_text(secret_file, SECRET_ENV)
    if not secret:
        fail(f"--listen needs the webhooks' secret: set {SECRET_ENV} or use --secret-file")
    return EventListener(host, int(port), secret.encode())


def _wait(work, listener, seconds: float) -> None:
    """Until the next poll; a round announced by a webhook meanwhile is answered at once."""
    next_poll = time.monotonic() + seconds
    while (left := next_poll - time.monotonic()) > 0:
        if listener is None:
            time.sleep(left)
            continue
        try:
            task_id, number = listener.rounds.get(timeout=left)
        except queues.Empty:
            continue
        work.answer_announced(task_id, number)


@events_cli.command("failed")
@plain_errors
def events_failed() -> None:
    """List the deliveries to the runner that failed on every try."""
    from tandem.domain import runner_events

    failed = runner_events.failed_deliveries(load_services())
    if not failed:
        typer.echo("no failed runner deliveries")
    for item in failed:
        when = f"{item['failed_at']:%Y-%m-%d %H:%M:%S}Z" if item["failed_at"] else "-"
        typer.echo(f"{item['delivery']}\t{item['event']}\t{when}\t{item['reason']}")


@events_cli.command("redeliver")
@plain_errors
def events_redeliver(
    ids: list[str] = typer.Argument(None, help="Delivery ids (see `tandem runner-events failed`)."),
    failed: bool = typer.Option(False, "--failed", help="Every failed delivery."),
) -> None:
    """Send failed deliveries again, with the same delivery ids; a worker sends them."""
    from tandem.domain import runner_events

    requeue(
        lambda chosen: runner_events.redeliver(load_services(), chosen),
        ids,
        every=failed,
        which="delivery ids, or --failed",
        none="no failed runner deliveries",
    )


def register(cli: typer.Typer) -> None:
    cli.add_typer(round_cli, name="round")
    cli.add_typer(events_cli, name="runner-events")
    cli.command("runner")(plain_errors(runner))
