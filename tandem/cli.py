"""The `tandem` command."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable

import typer
from sqlalchemy.exc import OperationalError

from tandem import migrate, queue, readiness
from tandem.errors import ServiceUnavailable, TandemError
from tandem.services import Services
from tandem.settings import load_settings

# No locals in tracebacks: they would print settings, tokens and keys.
cli = typer.Typer(
    help="Tandem: human preference judgments on paired GitHub pull requests.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")


def fail(message: str) -> None:
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
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Web worker processes."),
) -> None:
    """Run the web app: webhook intake, setup flow, HTTP API."""
    import uvicorn

    settings = load_settings()
    logging.basicConfig(level=settings.log_level)
    uvicorn.run(
        "app.main:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@cli.command()
@plain_errors
def worker(
    burst: bool = typer.Option(False, help="Stop when the queues are empty."),
    queues: list[str] = typer.Option(list(queue.ALL), "--queue", "-q", help="Queues to serve, in order."),
) -> None:
    """Run an RQ worker on Tandem's queues (with the scheduler that runs retries and periodic jobs)."""
    from rq import Worker
    from rq.serializers import JSONSerializer

    from workers import schedule

    services = _services()
    logging.basicConfig(level=services.settings.log_level)
    queue.check_redis(services.redis)
    from tandem import services as services_module

    services_module.use(services)
    schedule.install(services)
    Worker(queues, connection=services.redis, serializer=JSONSerializer).work(burst=burst, with_scheduler=True)


@db_cli.command("upgrade")
@plain_errors
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""
    services = _services()
    from tandem.db import check_database

    check_database(services.storage.engine)
    migrate.upgrade(services.storage.engine)
    typer.echo(f"database at {migrate.head_revision()}")


@cli.command()
@plain_errors
def doctor() -> None:
    """Check configuration, Redis, the database and GitHub credentials; say what is wrong."""
    services = _services()
    checks = [
        ("credentials", readiness.credential_problems),
        ("redis", readiness.redis_problems),
        ("database", readiness.database_problems),
    ]
    if not readiness.credential_problems(services):
        checks.append(("github", readiness.github_problems))
    failed = False
    for name, check in checks:
        problems = check(services)
        failed |= bool(problems)
        if not problems:
            typer.echo(f"ok    {name}")
        for problem in problems:
            typer.echo(f"FAIL  {name}: {problem}")
    if failed:
        raise typer.Exit(1)


@cli.command("installations")
@plain_errors
def list_installations() -> None:
    """List the installations and the repositories each can see."""
    from tandem.installations import list_installations as installations

    services = _services()
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


def main() -> None:
    try:
        cli()
    except ServiceUnavailable as exc:  # raised outside a command body (e.g. while parsing)
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
