"""The `tandem` command."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer
from sqlalchemy.exc import OperationalError

from tandem.infra import logs, migrate, queue, readiness
from tandem.infra.errors import ServiceUnavailable, TandemError
from tandem.infra.models import DEFAULT_TEAM
from tandem.infra.services import Services
from tandem.infra.settings import load_settings

# No locals in tracebacks: they would print settings, tokens and keys.
cli = typer.Typer(
    help="Tandem: human preference judgments on paired GitHub pull requests.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
token_cli = typer.Typer(help="API tokens for the HTTP API.", no_args_is_help=True)
cli.add_typer(token_cli, name="token")
task_cli = typer.Typer(help="Tasks: two model outputs to compare on a mirror.", no_args_is_help=True)
cli.add_typer(task_cli, name="task")
mirror_cli = typer.Typer(help="Mirror repositories.", no_args_is_help=True)
cli.add_typer(mirror_cli, name="mirror")
deliveries_cli = typer.Typer(help="Webhook deliveries that could not be processed.", no_args_is_help=True)
cli.add_typer(deliveries_cli, name="deliveries")


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def plain_errors(command: Callable) -> Callable:
    """Turn Tandem's errors into one line on stderr and exit status 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except TandemError as exc:
            fail(str(exc))
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
            fail(f"database cannot be reached: {reason}; check TANDEM_DATABASE_URL")

    return wrapper


def _services() -> Services:
    return Services.from_settings(load_settings())


@cli.command()
@plain_errors
def serve(
    host: str = typer.Option("127.0.0.1", envvar="HOST", help="Address to listen on."),
    port: int = typer.Option(8000, envvar="PORT", help="Port to listen on (TANDEM_PUBLIC_URL's default follows PORT)."),
    workers: int = typer.Option(1, min=1, help="Web worker processes."),
    forwarded_allow_ips: str = typer.Option(
        "127.0.0.1", help="Proxies whose X-Forwarded-For/-Proto headers are trusted (comma-separated, or *)."
    ),
) -> None:
    """Run the web app: webhook intake, setup flow, HTTP API."""
    import uvicorn

    # The port really listened on, for TANDEM_PUBLIC_URL's default in this and the web processes.
    os.environ["PORT"] = str(port)
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    if workers > 1:
        from tandem.infra import metrics

        metrics.share_between_processes()
    uvicorn.run(
        "app.main:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        log_config=None,  # uvicorn's lines go through Tandem's (tandem.infra.logs), in each web process
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        # Header, connection and time limits for clients not yet authenticated (app.limits).
        http="app.limits:BoundedHttpProtocol",
    )


@cli.command()
@plain_errors
def setup() -> None:
    """Print a one-time link that opens the GitHub App's registration (in one browser, within the hour)."""
    from tandem.infra import app_registration

    services = _services()
    if app_registration.is_registered(services.settings):
        typer.echo(f"Tandem is registered already (credentials in {services.settings.env_file}); nothing to do.")
        return
    queue.check_redis(services.redis)
    link = app_registration.new_setup_link(services.settings, services.redis)
    typer.echo(f"Open this link to register Tandem's GitHub App (it works once, within the hour):\n\n  {link}\n")
    typer.echo("On a remote host, open it through an SSH tunnel, with localhost:PORT as its host.")


@cli.command()
@plain_errors
def worker(
    burst: bool = typer.Option(False, help="Stop when the queues are empty."),
    queues: list[str] = typer.Option(list(queue.ALL), "--queue", "-q", help="Queues to serve, in order."),
    check: bool = typer.Option(
        False,
        "--check",
        help="Run no worker: exit 0 if one on this host sent a heartbeat lately, else 1 (a healthcheck).",
    ),
) -> None:
    """Run an RQ worker on Tandem's queues, with the scheduler (retries, periodic jobs) and the
    relay that turns accepted webhook deliveries into jobs. It rides out Redis restarts."""
    from workers import worker as worker_process

    services = _services()
    if check:
        import socket

        from tandem.infra import liveness

        queue.check_redis(services.redis)
        if not liveness.alive_on(services.redis, socket.gethostname()):
            fail(
                f"no `tandem worker` on {socket.gethostname()} sent a heartbeat in the last {liveness.HEARTBEAT_TTL} s"
            )
        typer.echo("worker alive")
        return
    logs.configure(services.settings.log_level, services.settings.log_format)
    queue.check_redis(services.redis)
    worker_process.run(services, queues, burst=burst)


@db_cli.command("upgrade")
@plain_errors
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""
    services = _services()
    from tandem.infra.db import check_database

    check_database(services.storage.engine)
    migrate.upgrade(services.storage.engine)
    typer.echo(f"database at {migrate.head_revision()}")


@cli.command()
@plain_errors
def doctor() -> None:
    """Check configuration, Redis, a live worker, the database, GitHub credentials and the mirrors'
    config; warn when Redis does not persist, and of parked deliveries and failed jobs."""
    services = _services()
    checks = [
        ("credentials", readiness.credential_problems),
        ("redis", readiness.redis_problems),
        ("worker", readiness.worker_problems),
        ("database", readiness.database_problems),
        ("github", readiness.github_problems),
        ("mirrors", readiness.mirror_problems),
    ]
    failed: set[str] = set()
    for name, check in checks:
        # GitHub needs the credentials; the mirrors need GitHub and the database.
        needs = {"github": {"credentials"}, "mirrors": {"credentials", "github", "database"}, "worker": {"redis"}}.get(
            name, set()
        )
        if needs & failed:
            typer.echo(f"skip  {name}: fix {', '.join(sorted(needs & failed))} first")
            failed.add(name)
            continue
        problems = check(services)
        if problems:
            failed.add(name)
        else:
            typer.echo(f"ok    {name}")
        for problem in problems:
            typer.echo(f"FAIL  {name}: {problem}")
    for name, warn, needs in (
        ("persistence", readiness.persistence_warnings, {"redis"}),
        ("deliveries", readiness.delivery_warnings, {"redis", "database"}),
    ):
        if not needs & failed:
            for warning in warn(services):
                typer.echo(f"WARN  {name}: {warning}")
    if failed:
        raise typer.Exit(1)


@cli.command("installations")
@plain_errors
def list_installations() -> None:
    """List the installations and the repositories each can see."""
    from tandem.infra.installations import list_installations as installations

    services = _services()
    if not services.settings.has_credentials:
        # Without them no installation can ever be recorded: saying "none yet" would mislead.
        raise TandemError(
            "no GitHub App credentials (TANDEM_APP_ID, TANDEM_WEBHOOK_SECRET and the private key): "
            "run `tandem setup` to register the app, then install it"
        )
    with services.storage.transaction() as session:
        rows = installations(session)
        if not rows:
            typer.echo("no installations yet: install the app on the organization that holds the mirrors")
        for installation in rows:
            state = "deleted" if installation.deleted_at else "suspended" if installation.suspended_at else "active"
            typer.echo(f"{installation.id}\t{installation.account_login} ({installation.account_type}, {state})")
            for repository in installation.repositories:
                if repository.removed_at is None:
                    typer.echo(f"\t{repository.full_name}")


@token_cli.command("create")
@plain_errors
def token_create(
    name: str = typer.Option(..., "--name", help="Who or what uses the token."),
    team: str = typer.Option(DEFAULT_TEAM, "--team", help="The research team whose tasks it sees."),
    scopes: list[str] = typer.Option(
        ..., "--scope", help="What it may do: submit, read, export, runner (repeat, or separate with commas)."
    ),
) -> None:
    """Create an API token; it is printed once and only its hash is kept."""
    from tandem.infra import tokens

    granted = tokens.parse_scopes(scopes)
    with _services().storage.transaction() as session:
        token = tokens.create_token(session, name, team=team, scopes=granted)
    typer.echo(token)


@token_cli.command("list")
@plain_errors
def token_list() -> None:
    """List the API tokens: name, team, scopes, when last used, whether revoked (never the token)."""
    from tandem.infra import tokens

    with _services().storage.transaction() as session:
        rows = tokens.list_tokens(session)
        if not rows:
            typer.echo("no API tokens yet: tandem token create --name NAME --team TEAM --scope submit,read")
        for row in rows:
            used = f"last used {row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never used"
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "live"
            typer.echo(f"{row.name}\tteam {row.team}\t{','.join(row.scopes)}\t{used}\t{state}")


@token_cli.command("revoke")
@plain_errors
def token_revoke(name: str = typer.Argument(..., help="The token's name (tandem token list).")) -> None:
    """Revoke an API token: it stops working at once."""
    from tandem.infra import tokens

    with _services().storage.transaction() as session:
        tokens.revoke_token(session, name)
    typer.echo(f"revoked {name}")


@task_cli.command("submit")
@plain_errors
def task_submit(
    path: Path = typer.Argument(..., help="Task file, YAML or JSON."),
    team: str = typer.Option(DEFAULT_TEAM, "--team", help="The research team the task belongs to."),
) -> None:
    """Submit a task; prints its id. A worker opens the two PRs."""
    from tandem.domain import tasks
    from tandem.domain.task_spec import load_task_file

    submit_file(path, lambda text: tasks.submit(_services(), load_task_file(text), submitted_by=cli_user(), team=team))


def cli_user() -> str:
    return f"cli:{getpass.getuser()}"


def submit_file(path: Path, submit: Callable[[str], object]) -> None:
    """Submit what a YAML or JSON file holds; prints the answer, or each problem with its field."""
    from tandem.domain.task_spec import InvalidTask

    try:
        text = path.read_text()
    except OSError as exc:
        raise TandemError(f"{path}: {exc.strerror}") from None
    try:
        answer = submit(text)
    except InvalidTask as exc:
        for error in exc.errors:
            typer.echo(f"error: {path}: {error['field']}: {error['problem']}", err=True)
        raise typer.Exit(1) from None
    typer.echo(answer)


@task_cli.command("show")
@plain_errors
def task_show(task_id: int) -> None:
    """Show a task's status, its PRs, or why it failed."""
    from tandem.domain import tasks

    with _services().storage.transaction() as session:
        view = tasks.describe(tasks.get_task(session, task_id))
    typer.echo(json.dumps(view, indent=2))


@task_cli.command("list")
@plain_errors
def task_list(
    status: str | None = typer.Option(None, help="Only tasks with this status (queued, open, closed, failed, ...)."),
    repo: str | None = typer.Option(None, help="Only tasks on this repository (owner/name)."),
    team: str | None = typer.Option(None, help="Only this research team's tasks (default: every team's)."),
) -> None:
    """List tasks, oldest first: id, status, repository, team, when submitted, and the PRs."""
    from tandem.domain import tasks

    if status is not None and status not in tasks.STATUSES:
        raise TandemError(f"--status {status}: one of {', '.join(tasks.STATUSES)}")
    storage, after, listed = _services().storage, None, 0
    while True:
        with storage.transaction() as session:
            page = [
                tasks.summarize(task)
                for task in tasks.list_tasks(session, team=team, status=status, repo=repo, after_id=after, limit=100)
            ]
        for task in page:
            prs = " ".join(task.get("pull_requests", {}).values())
            line = (
                f"{task['id']}\t{task['status']}\t{task['repo']}\tteam {task['team']}\t{task['created_at'][:16]}\t{prs}"
            )
            typer.echo(line.rstrip())
        listed += len(page)
        if len(page) < 100:
            break
        after = page[-1]["id"]
    if not listed:
        typer.echo("no tasks" + (" match" if status or repo or team else " yet: tandem task submit examples/task.yml"))


@mirror_cli.command("create")
@plain_errors
def mirror_create(
    upstream: str = typer.Argument(..., help="owner/name of the upstream repository."),
    org: str = typer.Option(..., "--org", help="Organization (with Tandem installed) to create the mirror in."),
) -> None:
    """Create a mirror of UPSTREAM in ORG through GitHub's forks API (default branch only)."""
    from tandem.domain import mirrors

    full_name = mirrors.create_mirror(_services(), upstream, org)
    typer.echo(f"created {full_name}")
    typer.echo(
        f"To enable it: commit .github/tandem.yml with `mirror: true` (and your raters) to its default branch,\n"
        f"and make sure the app's installation on {org} includes {full_name}."
    )


@cli.command("export")
@plain_errors
def export_command(
    out: Path = typer.Argument(..., help="File to write (.parquet: Parquet), or - for standard output."),
    format: str = typer.Option(
        "jsonl", "--format", help="jsonl (raw rows), trl, openai-dpo, helpsteer3, battles or ratings."
    ),
    parquet: bool = typer.Option(False, "--parquet", help="Write Parquet rather than JSON Lines."),
    since: str | None = typer.Option(None, help="Only judgments recorded or changed since this date (ISO 8601)."),
    repo: str | None = typer.Option(None, help="Only tasks on this repository (owner/name)."),
    round: int | None = typer.Option(None, "--round", help="Only this round (1 is the task's prompt)."),
    metadata: list[str] = typer.Option([], "--metadata", help="Only tasks whose metadata has KEY=VALUE (repeatable)."),
    include_unapproved: bool = typer.Option(False, help="Take votes not (yet) approved by a reviewer."),
    include_gold: bool = typer.Option(False, help="Take gold tasks' votes into training formats."),
    ties: str = typer.Option("keep", help="keep or drop votes for tie or neither."),
    with_files: bool = typer.Option(False, help="Add the full text of the files each side changed."),
    conversational: bool = typer.Option(False, help="trl: role/content messages rather than text."),
    cursor: str | None = typer.Option(None, help="Only what changed since the export that printed this token."),
    cursor_out: Path | None = typer.Option(None, help="Write the token for the next --cursor here (not stderr)."),
) -> None:
    """Write the judgments for training or a leaderboard: raw rows with their history, or a
    trainer's preference format, with the de-blinded models and the code of both sides.

    Prints a resume token (on stderr, or to --cursor-out): the next run with --cursor TOKEN gets
    exactly what changed in between."""
    from tandem.domain import changes
    from tandem.domain.export_formats import Selection, format_rows, write

    format_rows(format)  # an unknown format is refused before the file is made
    selection = Selection.parse(
        since=since,
        repo=repo,
        round=round,
        metadata=metadata,
        ties=ties,
        include_unapproved=include_unapproved,
        include_gold=include_gold,
        with_files=with_files,
        conversational=conversational,
        cursor=cursor,
    )
    parquet = parquet or out.suffix == ".parquet"
    if parquet and str(out) == "-":
        raise TandemError("Parquet is written to a file, not to standard output")
    with contextlib.ExitStack() as stack:
        if str(out) == "-":
            stream = sys.stdout
        elif parquet:
            stream = stack.enter_context(open(out, "wb"))
        else:
            stream = stack.enter_context(open(out, "w", encoding="utf-8"))
        with _services().storage.transaction() as session:
            # Taken first: whatever commits from here on is the next run's.
            until = changes.token(session)
            count = write(session, format, dataclasses.replace(selection, until=until), stream, parquet=parquet)
    typer.echo(f"exported {count} rows ({format})", err=True)
    if cursor_out is not None:
        cursor_out.write_text(until + "\n", encoding="utf-8")
    else:
        typer.echo(f"cursor: {until}", err=True)


@deliveries_cli.command("failed")
@plain_errors
def deliveries_failed() -> None:
    """List the parked deliveries (dead letters): unprocessable, or failed on every try."""
    from tandem.infra import dead_letters

    letters = dead_letters.listing(_services())
    if not letters:
        typer.echo("no parked deliveries")
    for letter in letters:
        what = f"{letter.event}.{letter.action}" if letter.action else letter.event
        state = f"replayed {letter.retried_at:%Y-%m-%d %H:%M:%S}Z" if letter.retried_at else letter.kind.value
        typer.echo(f"{letter.delivery_id}\t{what}\t{letter.parked_at:%Y-%m-%d %H:%M:%S}Z\t{state}\t{letter.reason}")


@deliveries_cli.command("retry")
@plain_errors
def deliveries_retry(
    ids: list[str] = typer.Argument(None, help="GUIDs of parked deliveries (see `tandem deliveries failed`)."),
    all_: bool = typer.Option(False, "--all", help="Every parked delivery."),
) -> None:
    """Queue parked deliveries again; a worker processes them (or parks them again, saying why)."""
    from tandem.infra.delivery_queue import replay

    requeue(
        lambda chosen: replay(_services(), chosen),
        ids,
        every=all_,
        which="the GUIDs of parked deliveries, or --all",
        none="no parked deliveries",
    )


def requeue(
    send: Callable[[list[str] | None], list[str]], ids: list[str] | None, *, every: bool, which: str, none: str
) -> None:
    """Queue deliveries again: these ids, or every one (None); says which were queued."""
    if bool(ids) == every:
        raise TandemError(f"give {which}")
    queued = send(None if every else ids)
    for delivery_id in queued:
        typer.echo(f"queued {delivery_id}")
    typer.echo(f"{len(queued)} deliveries queued again" if queued else none)


@cli.command("stats")
@plain_errors
def stats_command(
    repo: str | None = typer.Option(None, help="Only tasks on this repository (owner/name)."),
    since: str | None = typer.Option(None, help="Only votes written at or after this time (ISO 8601)."),
    until: str | None = typer.Option(None, help="Only votes written before this time (ISO 8601)."),
    round: int | None = typer.Option(None, "--round", help="Only this round (1 is the task's prompt)."),
    metadata: list[str] = typer.Option([], "--metadata", help="Only tasks whose metadata has KEY=VALUE (repeatable)."),
    model: list[str] = typer.Option([], "--model", help="Only pairs of two of these models (repeatable)."),
    include_unapproved: bool = typer.Option(False, help="Count votes not (yet) approved by a reviewer."),
    bootstrap: int = typer.Option(1000, min=0, help="Bootstrap resamples for the confidence intervals."),
    seed: int = typer.Option(0, help="Seed of the bootstrap, for reproducible intervals."),
    pairs: bool = typer.Option(False, "--pairs", help="List the agreement of every pair with several raters."),
    format: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Model rankings with confidence intervals, position bias, agreement, raters and reviewers."""
    from tandem.domain.statistics.queries import Filters
    from tandem.domain.statistics.report import as_text, statistics

    if format not in ("table", "json"):
        raise TandemError(f"--format {format}: use table or json")
    filters = Filters.parse(
        repo=repo,
        since=since,
        until=until,
        round=round,
        metadata=metadata,
        models=model,
        include_unapproved=include_unapproved,
    )
    with _services().storage.transaction() as session:
        report = statistics(session, filters, bootstrap=bootstrap, seed=seed, per_pair=pairs)
    typer.echo(json.dumps(report, indent=2) if format == "json" else as_text(report), nl=format == "json")


@cli.command()
@plain_errors
def redeliver(
    since: str = typer.Option("24h", help="How far back to look: 30m, 24h, 3d (GitHub keeps 3 days)."),
) -> None:
    """Ask GitHub to redeliver webhooks that failed and were never processed."""
    from tandem.infra import redelivery

    report = redelivery.redeliver_failed(_services(), parse_duration(since), log=typer.echo)
    for line in report.lines():
        typer.echo(line)


def parse_duration(text: str):
    from datetime import timedelta

    units = {"m": "minutes", "h": "hours", "d": "days"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise TandemError(f"--since {text!r}: use a number and m, h or d, like 24h")
    try:
        return timedelta(**{units[unit]: int(number)})
    except OverflowError:
        raise TandemError(f"--since {text!r}: too long; GitHub keeps deliveries for 3 days") from None


# The model runner's commands live in their own module (which uses this one's helpers).
from cli import runner as runner_cli  # noqa: E402

runner_cli.register(cli)
from cli import review as review_cli  # noqa: E402

review_cli.register(cli)

# `tandem sandbox` and `tandem demo` likewise.
from tandem.sandbox import cli as sandbox_cli  # noqa: E402

sandbox_cli.register(cli)


def main() -> None:
    try:
        cli()
    except ServiceUnavailable as exc:  # raised outside a command body (e.g. while parsing)
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
