"""check_run, check_suite and status webhooks: the mirror's CI reporting on the heads of a
task's PRs (tandem.domain.ci). Tandem's own check run and suite are not CI. When both sides' CI has
first finished in a task's open round and the repository has `require_ci`, the raters are told
on both PRs that the round takes votes."""

from __future__ import annotations

from sqlalchemy import select

from tandem.domain import ci, ci_notice, repo_config
from tandem.domain.rounds import lifecycle
from tandem.domain.webhook_payloads import App, CheckRunEvent, CheckSuiteEvent, Event, StatusEvent
from tandem.infra.db import utcnow
from tandem.infra.models import Round, Task
from tandem.infra.services import Services
from workers.router import Delivery, Router

router = Router()


def _ours(delivery: Delivery, app: App) -> bool:
    return app.id == delivery.services.settings.app_id


def _config(services: Services, installation_id: int, repo: str) -> repo_config.RepoConfig:
    return repo_config.load(services, services.github.as_installation(installation_id), repo)


def _resolve(services: Services, action: str | None, payload: Event) -> repo_config.RepoConfig | None:
    """The repository's config, asked of GitHub before the transaction (workers.router.Resolver),
    if a round there waits for its CI (which this report may finish)."""
    if not payload.repo or payload.installation is None:
        return None
    with services.storage.transaction() as session:
        waiting = session.scalar(
            select(Round.id)
            .join(Task, Round.task_id == Task.id)
            .where(
                Task.repo_full_name == payload.repo,
                Round.status == lifecycle.RoundStatus.OPEN,
                Round.ci_finished_at.is_(None),
            )
            .limit(1)
        )
    if waiting is None:
        return None
    try:
        return _config(services, payload.installation.id, payload.repo)
    except repo_config.RepoConfigError:
        # Read again, in the transaction, only by the report that finishes a round's CI: a broken
        # tandem.yml must not keep every CI report of the repository from being recorded.
        return None


@router.register("check_run", resolve=_resolve)
def check_run(delivery: Delivery) -> None:
    payload = delivery.payload_as(CheckRunEvent)
    run, app = payload.check_run, payload.check_run.app or App()
    if not _ours(delivery, app):
        _record(
            delivery,
            run.head_sha,
            ci.CheckKind.CHECK_RUN,
            f"app:{app.id}",
            run.name,
            (run.id, ci.progress(run.status)),
            ci.state_of(run.status, run.conclusion),
            run.html_url or run.details_url,
        )


@router.register("check_suite", resolve=_resolve)
def check_suite(delivery: Delivery) -> None:
    payload = delivery.payload_as(CheckSuiteEvent)
    suite, app = payload.check_suite, payload.check_suite.app or App()
    if not _ours(delivery, app):
        _record(
            delivery,
            suite.head_sha,
            ci.CheckKind.CHECK_SUITE,
            f"app:{app.id}",
            app.slug or str(app.id),
            (suite.id, ci.progress(suite.status)),
            ci.state_of(suite.status, suite.conclusion),
            None,
        )


@router.register("status", resolve=_resolve)
def status(delivery: Delivery) -> None:
    payload = delivery.payload_as(StatusEvent)
    state = payload.state
    _record(
        delivery,
        payload.sha,
        ci.CheckKind.STATUS,
        f"user:{payload.sender.id if payload.sender else None}",
        payload.context,
        (payload.id, 0),
        ci.state_of("completed" if state != "pending" else state, state),
        payload.target_url,
    )


def _record(
    delivery: Delivery,
    head_sha: str,
    kind: ci.CheckKind,
    source: str,
    name: str,
    order: tuple[int, int],
    state: ci.CiState,
    url: str | None,
) -> None:
    repo = delivery.payload.repo
    if not repo:
        return
    task_ids = ci.record(
        delivery.session,
        repo,
        head_sha,
        kind=kind,
        source=source,
        name=name,
        order=order,
        state=state,
        url=url,
        # Tandem's clock, not the payload's; to the second, as GitHub writes the times of comments,
        # so a vote written in the second CI finished counts (tandem.domain.judging.votes).
        reported_at=utcnow().replace(microsecond=0),
        delivery_id=delivery.id,
    )
    for task_id in sorted(task_ids):
        _note_finished(delivery, repo, task_id)


def _note_finished(delivery: Delivery, repo: str, task_id: int) -> None:
    session = delivery.session
    round_ = session.scalars(
        select(Round)
        .where(Round.task_id == task_id, Round.status == lifecycle.RoundStatus.OPEN)
        .order_by(Round.number.desc())
    ).first()
    if round_ is None or not ci_notice.record(session, round_):
        return
    if delivery.payload.installation is None:
        return
    installation_id = delivery.payload.installation.id
    # Asked before the transaction (_resolve); asked now only if the round began waiting since.
    config = delivery.resolved or _config(delivery.services, installation_id, repo)
    if config.require_ci:
        delivery.outbox_entries.append(ci_notice.tell(session, round_, installation_id, repo))
