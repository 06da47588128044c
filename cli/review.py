"""`tandem review queue`: what waits in review (tandem.domain.review_queue)."""

from __future__ import annotations

import json

import typer

from cli.common import load_storage, plain_errors
from tandem.infra.errors import TandemError

review_cli = typer.Typer(help="Reviewers' work.", no_args_is_help=True)


@review_cli.command("queue")
@plain_errors
def queue(
    status: str = typer.Option("waiting", help="waiting (for reviewers) or returned (to raters)."),
    team: str | None = typer.Option(None, help="Only this team's tasks."),
    format: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Votes waiting for reviewers (or returned to raters), oldest first, and how long they have waited."""
    from tandem.domain.review_queue import STATUSES, review_queue

    if status not in STATUSES or format not in ("table", "json"):
        raise TandemError("use --status waiting|returned and --format table|json")
    with load_storage().transaction() as session:
        items = review_queue(session, status, team=team)
    if format == "json":
        typer.echo(json.dumps(items, indent=2))
        return
    if not items:
        typer.echo(f"nothing {status}")
    for item in items:
        hours = item["waiting_seconds"] / 3600
        again = " (resubmitted)" if item["resubmitted"] else ""
        typer.echo(
            f"task {item['task_id']} round {item['round']} @{item['rater']}{again}: {status} {hours:.1f} h "
            f"since {item['since']}  {item['vote_url'] or ''}".rstrip()
        )


def register(cli: typer.Typer) -> None:
    cli.add_typer(review_cli, name="review")
