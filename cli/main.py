"""The `tandem` command."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from cli.common import cli_user, fail, load_services, load_storage, plain_errors, submit_file
from tandem.infra import logs, migrate
from tandem.infra.errors import ServiceUnavailable, TandemError
from tandem.infra.models import DEFAULT_TEAM
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
    from tandem.infra import app_registration, queue

    services = load_services()
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
    queues: list[str] = typer.Option(
        [], "--queue", "-q", help="Queues to serve, in order (default: all of Tandem's, most urgent first)."
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="Run no worker: exit 0 if one on this host sent a heartbeat lately, else 1 (a healthcheck).",
    ),
    metrics_port: int | None = typer.Option(
        None,
        min=1,
        max=65535,
        help="Also answer Prometheus's scrape at http://HOST:PORT/metrics (a host with no `tandem serve`).",
    ),
    metrics_host: str = typer.Option("127.0.0.1", help="Address the --metrics-port scrape listens on."),
) -> None:
    """Run an RQ worker on Tandem's queues, with the scheduler (retries, periodic jobs) and the
    relay that turns accepted webhook deliveries into jobs. It rides out Redis restarts."""
    from tandem.infra import queue
    from workers import worker as worker_process

    services = load_services()
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
    if metrics_port is not None:
        from tandem.infra import metrics

        try:
            metrics.serve(services.redis, metrics_host, metrics_port)
        except OSError as exc:
            fail(f"--metrics-port {metrics_port}: cannot listen on {metrics_host}: {exc.strerror}")
    worker_process.run(services, queues or list(queue.ALL), burst=burst)


@db_cli.command("upgrade")
@plain_errors
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""
    services = load_services()
    from tandem.infra.db import check_database

    check_database(services.storage.engine)
    migrate.upgrade(services.storage.engine)
    typer.echo(f"database at {migrate.head_revision()}")


@cli.command()
@plain_errors
def doctor() -> None:
    """Check configuration, Redis, a live worker, the database, GitHub credentials, the mirrors'
    config and that git reaches them; warn when Redis does not persist, and of parked deliveries
    and failed jobs."""
    from tandem.infra import readiness

    services = load_services()
    checks = [
        ("credentials", readiness.credential_problems),
        ("redis", readiness.redis_problems),
        ("worker", readiness.worker_problems),
        ("database", readiness.database_problems),
        ("github", readiness.github_problems),
        ("mirrors", readiness.mirror_problems),
        ("git", readiness.git_problems),
    ]
    failed: set[str] = set()
    for name, check in checks:
        # GitHub needs the credentials; the mirrors and their git need GitHub and the database.
        mirrors = {"credentials", "github", "database"}
        needs = {"github": {"credentials"}, "mirrors": mirrors, "git": mirrors, "worker": {"redis"}}.get(name, set())
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

    services = load_services()
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
    with load_storage().transaction() as session:
        token = tokens.create_token(session, name, team=team, scopes=granted)
    typer.echo(token)


@token_cli.command("list")
@plain_errors
def token_list() -> None:
    """List the API tokens: name, team, scopes, when last used, whether revoked (never the token)."""
    from tandem.infra import tokens

    with load_storage().transaction() as session:
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

    with load_storage().transaction() as session:
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

    submit_file(
        path, lambda text: tasks.submit(load_services(), load_task_file(text), submitted_by=cli_user(), team=team)
    )


@task_cli.command("show")
@plain_errors
def task_show(task_id: int) -> None:
    """Show a task's status, its PRs, or why it failed."""
    from tandem.domain import tasks

    with load_storage().transaction() as session:
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
    storage, after, listed = load_storage(), None, 0
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

    full_name = mirrors.create_mirror(load_services(), upstream, org)
    typer.echo(f"created {full_name}")
    typer.echo(
        f"To enable it: commit .github/tandem.yml with `mirror: true` (and your raters) to its default branch,\n"
        f"and make sure the app's installation on {org} includes {full_name}."
    )


# The other commands live in their own modules, one per group.
from cli import data, deliveries  # noqa: E402
from cli import review as review_cli  # noqa: E402
from cli import runner as runner_cli  # noqa: E402

data.register(cli)
deliveries.register(cli)
runner_cli.register(cli)
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
