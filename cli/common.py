"""What every `tandem` command shares: one-line errors, the services, who submits."""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from sqlalchemy.exc import OperationalError

from tandem.infra.db import Storage
from tandem.infra.errors import TandemError
from tandem.infra.settings import load_settings

if TYPE_CHECKING:
    from tandem.infra.services import Services


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


def load_services() -> Services:
    # Imported here: the services bring GitHub's client and RQ (~0.5 s of start-up), which the
    # commands that only read the database never use.
    from tandem.infra.services import Services

    return Services.from_settings(load_settings())


def load_storage() -> Storage:
    """The database alone, for the commands that need nothing else."""
    return Storage.from_url(load_settings().database_url)


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
