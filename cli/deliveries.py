"""`tandem deliveries` and `tandem redeliver`: webhook deliveries that were not processed."""

from __future__ import annotations

import typer

from cli.common import load_services, plain_errors, requeue
from tandem.infra.errors import TandemError

deliveries_cli = typer.Typer(help="Webhook deliveries that could not be processed.", no_args_is_help=True)


def deliveries_failed() -> None:
    """List the parked deliveries (dead letters): unprocessable, or failed on every try."""
    from tandem.infra import dead_letters

    letters = dead_letters.listing(load_services())
    if not letters:
        typer.echo("no parked deliveries")
    for letter in letters:
        what = f"{letter.event}.{letter.action}" if letter.action else letter.event
        state = f"replayed {letter.retried_at:%Y-%m-%d %H:%M:%S}Z" if letter.retried_at else letter.kind.value
        typer.echo(f"{letter.delivery_id}\t{what}\t{letter.parked_at:%Y-%m-%d %H:%M:%S}Z\t{state}\t{letter.reason}")


def deliveries_retry(
    ids: list[str] = typer.Argument(None, help="GUIDs of parked deliveries (see `tandem deliveries failed`)."),
    all_: bool = typer.Option(False, "--all", help="Every parked delivery."),
) -> None:
    """Queue parked deliveries again; a worker processes them (or parks them again, saying why)."""
    from tandem.infra.delivery_queue import replay

    requeue(
        lambda chosen: replay(load_services(), chosen),
        ids,
        every=all_,
        which="the GUIDs of parked deliveries, or --all",
        none="no parked deliveries",
    )


def redeliver(
    since: str = typer.Option("24h", help="How far back to look: 30m, 24h, 3d (GitHub keeps 3 days)."),
) -> None:
    """Ask GitHub to redeliver webhooks that failed and were never processed."""
    from tandem.infra import redelivery

    report = redelivery.redeliver_failed(load_services(), parse_duration(since), log=typer.echo)
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


def register(cli: typer.Typer) -> None:
    deliveries_cli.command("failed")(plain_errors(deliveries_failed))
    deliveries_cli.command("retry")(plain_errors(deliveries_retry))
    cli.add_typer(deliveries_cli, name="deliveries")
    cli.command()(plain_errors(redeliver))
