"""Keep what GitHub shows of a pair in step with the judgments: labels, check runs, and, once
the task has all the approved judgments it asked for, a summary comment and both PRs closed
(never merged). Everything shown is the same on both PRs and says nothing of the models."""

from __future__ import annotations

from typing import NamedTuple

from githubkit_schemas.latest.types import ReposOwnerRepoCheckRunsCheckRunIdPatchBodyPropOutputType as CheckRunOutput

from tandem.domain import judging, pr_text, repo_config, rounds
from tandem.infra import installations, liveness, redis_keys
from tandem.infra.db import utcnow
from tandem.infra.models import Pair
from tandem.infra.services import Services

SUMMARY = (
    "**Tandem:** judging of task {task_id} is complete ({judgments} approved judgment{s}). "
    "Thank you! Both options are closed now; they were never meant to be merged."
)


def _state(progress: judging.Progress) -> str:
    if progress.complete:
        return "approved"
    return "judged" if progress.judgments else "pending"


def _progress_text(progress: judging.Progress) -> tuple[str, str]:
    title = (
        "Approved"
        if progress.complete
        else f"{progress.judgments} of {progress.required} judgment{'s' if progress.required != 1 else ''}"
    )
    summary = (
        f"Round {progress.round}: {progress.judgments} judgment(s) recorded, {progress.approved} approved, "
        f"{progress.returned} sent back, {progress.pending} awaiting review; {progress.required} needed."
    )
    return title, summary


class _SideOnGitHub(NamedTuple):
    letter: str
    number: int
    check_run_id: int
    summary_posted: bool


def _on_github(pair: Pair) -> list[_SideOnGitHub]:
    # Opening a pair sets opened_at only after both sides have their PR and check run.
    shown = []
    for side in pair.sides:
        if side.pr_number is None or side.check_run_id is None:
            raise RuntimeError(f"pair {pair.id} is open, but side {side.letter} has no PR or check run")
        shown.append(_SideOnGitHub(side.letter, side.pr_number, side.check_run_id, side.summary_posted_at is not None))
    return shown


def sync_pair(services: Services, pair_id: int) -> str:
    # One sync of a pair at a time: two at once would both post the summary, and the slower
    # could show older progress last. (A lease: a killed worker's lapses in seconds, not minutes.)
    with liveness.lease(services.redis, redis_keys.pair_sync(pair_id), blocking_timeout=120):
        return _sync(services, pair_id)


def _sync(services: Services, pair_id: int) -> str:
    with services.storage.transaction() as session:
        pair = session.get_one(Pair, pair_id)
        task = pair.task
        repository = installations.active_repository(session, task.repo_full_name)
        if repository is None or pair.opened_at is None:
            return "not open"
        installation_id = repository.installation_id
    client = services.github.as_installation(installation_id)
    owner, name = task.repo_full_name.split("/", 1)
    config = repo_config.load(services, client, task.repo_full_name)
    with services.storage.transaction() as session:
        pair = session.get_one(Pair, pair_id)
        progress = judging.progress(session, pair, config.raters_per_task)
        sides = _on_github(pair)
        shown_state, shown_progress, closed = pair.shown_state, pair.shown_progress, pair.closed_at
        every_round = pr_text.rounds_summary(pair.task.rounds)
    state = _state(progress)
    title, summary = _progress_text(progress)
    summary += f"\n\n{every_round}"

    if state != shown_state:
        labels = [config.labels.tandem, getattr(config.labels, state)]
        for side in sides:
            client.rest.issues.update(owner, name, side.number, labels=labels)
    if title + summary != shown_progress:
        output: CheckRunOutput = {"title": title, "summary": summary}
        for side in sides:
            if progress.complete:
                client.rest.checks.update(
                    owner, name, side.check_run_id, output=output, status="completed", conclusion="success"
                )
            else:
                client.rest.checks.update(owner, name, side.check_run_id, output=output)
    with services.storage.transaction() as session:
        pair = session.get_one(Pair, pair_id)
        pair.shown_state, pair.shown_progress = state, title + summary

    if progress.complete and closed is None:
        text = SUMMARY.format(task_id=task.id, judgments=progress.judgments, s="s" if progress.judgments != 1 else "")
        for side in sides:
            if not side.summary_posted:
                client.rest.issues.create_comment(owner, name, side.number, body=text)
                with services.storage.transaction() as session:
                    session.get_one(Pair, pair_id).side(side.letter).summary_posted_at = utcnow()
        for side in sides:
            client.rest.pulls.update(owner, name, side.number, state="closed")
        with services.storage.transaction() as session:
            pair = session.get_one(Pair, pair_id)
            pair.closed_at = utcnow()
            rounds.close_task(session, pair.task)
    return state
