"""The "CI has finished" notice of a round: when both sides' CI on the round's heads has first
finished while the round is open, record it (rounds.ci_finished_at) and, with `require_ci`, tell
the raters on both PRs that the round takes votes. Checked on each CI report (workers.ci) and when
a round opens (tandem.domain.pairs, tandem.domain.rounds.apply): CI often finishes before the round opens, and
then no later report would come to tell the raters."""

from __future__ import annotations

import logging

import redis
from sqlalchemy.orm import Session

from tandem.domain import ci
from tandem.domain.repo_config import RepoConfig
from tandem.infra import job_names, outbox, queue
from tandem.infra.errors import known
from tandem.infra.models import OutboxEntry, Round
from tandem.infra.services import Services

log = logging.getLogger(__name__)


def record(session: Session, round_: Round) -> bool:
    """Record when both sides' CI finished in the open round `round_`; True the first time only."""
    if round_.ci_finished_at is not None:
        return False
    round_.ci_finished_at = ci.finished_at(ci.rounds_ci(session, [round_.id]).get(round_.id, {}))
    return round_.ci_finished_at is not None


def tell(session: Session, round_: Round, installation_id: int, repo: str) -> OutboxEntry:
    """Add to the session the outbox entry whose job tells the raters on both PRs."""
    pair = known(round_.task.pair, f"task {round_.task_id}'s pair")  # a round's CI is told on its PRs
    numbers = [side.pr_number for side in pair.sides if side.pr_number is not None]
    entry = OutboxEntry(
        queue=queue.PAIRS,
        func=job_names.TELL_CI_FINISHED,
        args=[],
        kwargs=job_names.payload(
            job_names.TELL_CI_FINISHED,
            installation_id=installation_id,
            repo=repo,
            pr_numbers=numbers,
            round_number=round_.number,
        ),
    )
    session.add(entry)
    session.flush()
    return entry


def on_open(session: Session, round_: Round, installation_id: int, repo: str, config: RepoConfig | None) -> int | None:
    """The round has just opened: its CI may have finished already, with no report to come that
    would say so. Returns the id of the notice to dispatch once the transaction has committed."""
    if record(session, round_) and config is not None and config.require_ci:
        return tell(session, round_, installation_id, repo).id
    return None


def dispatch(services: Services, entry_id: int | None) -> None:
    """Queue the notice once its transaction has committed."""
    if entry_id is None:
        return
    try:
        outbox.dispatch(services, [entry_id])
    except redis.RedisError:  # recorded: the outbox's sweep queues it once Redis is back
        log.warning("CI notice %s left to the outbox sweep (Redis unavailable)", entry_id)
