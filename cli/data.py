"""`tandem export` and `tandem stats`: the data products, from the command line."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import typer

from cli.common import load_storage, plain_errors
from tandem.infra.errors import TandemError


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
    _check_directory(cursor_out)
    with _destination(out) as stream, load_storage().transaction() as session:
        # The export makes and drops millions of small objects, and each full collection of the
        # garbage collector walked every object loaded so far (SQLAlchemy's, the models'): a
        # third of the export's time. Set apart, they are not walked again; this process ends
        # with the export, so nothing set apart needs collecting.
        gc.freeze()
        # Taken first: whatever commits from here on is the next run's.
        until = changes.token(session)
        count = write(session, format, dataclasses.replace(selection, until=until), stream, parquet=parquet)
    typer.echo(f"exported {count} rows ({format})", err=True)
    if cursor_out is not None:
        # Only once the export is in place, and whole: a job that finds a cursor finds its export.
        with _destination(cursor_out) as written:
            written.write((until + "\n").encode())
    else:
        typer.echo(f"cursor: {until}", err=True)


def _check_directory(path: Path | None) -> None:
    """Refuse a destination that cannot be written before the export, not after."""
    if path is None or str(path) == "-":
        return
    if path.is_dir():
        raise TandemError(f"{path}: is a directory")
    if not path.parent.is_dir():
        raise TandemError(f"{path.parent}: no such directory")


@contextlib.contextmanager
def _destination(out: Path) -> Iterator[IO[bytes]]:
    """The stream to write ``out`` through. A file appears at ``out`` only whole: it is written
    to a temporary file beside it, moved into place once everything was written, and removed if
    anything failed (a nightly job would take a truncated file for a whole export). Standard
    output (-) and what is not a regular file (/dev/null, a named pipe) are written as they are."""
    if str(out) == "-":
        sys.stdout.flush()
        yield sys.stdout.buffer
        return
    _check_directory(out)
    # Written in large pieces: each write to the file lets the export's reading thread
    # (tandem.infra.snapshot) take the interpreter, and 8 KB pieces cost seconds of switching.
    try:
        if out.exists() and not out.is_file():
            with open(out, "wb", buffering=1 << 20) as stream:
                yield stream
            return
        # A symbolic link stays one: the file it names is replaced, as open() would write it.
        out = Path(os.path.realpath(out))
        # The mode open() would have left it with: an existing file's own (one kept private stays
        # so), else the umask's (mkstemp's is the owner's alone).
        mode = stat.S_IMODE(out.stat().st_mode) if out.exists() else 0o666 & ~_umask()
        descriptor, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")
    except OSError as exc:
        raise TandemError(f"cannot write {out}: {exc.strerror}") from None
    try:
        os.fchmod(descriptor, mode)
        with open(descriptor, "wb", buffering=1 << 20) as stream:
            yield stream
        os.replace(temporary, out)
    except OSError as exc:
        raise TandemError(f"cannot write {out}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


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
    with load_storage().transaction() as session:
        report = statistics(session, filters, bootstrap=bootstrap, seed=seed, per_pair=pairs)
    typer.echo(json.dumps(report, indent=2) if format == "json" else as_text(report), nl=format == "json")


def register(cli: typer.Typer) -> None:
    cli.command("export")(plain_errors(export_command))
    cli.command("stats")(plain_errors(stats_command))
