"""Putting an accepted round on GitHub, and saying on both PRs how a round ended.

Each step is recorded once done and skipped when re-run; a creation (check run, comment) is
preceded by a recorded intent, so a re-run after a kill looks up what the dead run made instead
of making a second one. The commits are deterministic (the side's head as parent, the neutral
author, the round's submission time on both sides, the same message), so a re-run builds the
very same commits and their push is a no-op. Killed at any step and run again, the job leaves
exactly one new commit per side and one comment per PR.

Both branches are pushed in one atomic push that holds only if each is still where Tandem last
pushed it: if someone pushed to a side meanwhile, nothing is overwritten and the round fails,
saying so on the task and on both PRs.

REST requests per round, whatever the diff's size: one update per PR (body and labels), one
review request per PR (when the task has raters), one check run and one comment per PR.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from githubkit import GitHub
from githubkit.exception import RequestFailed

from tandem import gitops, installations, mirrors, pr_text, repo_config
from tandem.commands import help_text
from tandem.db import utcnow
from tandem.judging import Rubric
from tandem.models import Round, Task
from tandem.repo_config import RepoConfig
from tandem.rounds.lifecycle import (
    ClosedReason,
    RoundStatus,
    close_round,
    conversation,
    expired_rounds,
    get_round,
    open_round,
)
from tandem.services import Services

log = logging.getLogger(__name__)

StepHook = Callable[[str], None]
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")


def _nothing(_step: str) -> None:
    pass


@dataclass
class Applying:
    """What one run of the job works with."""

    services: Services
    task_id: int
    number: int
    repo: str
    client: GitHub
    step_done: StepHook = _nothing
    config: RepoConfig = field(default_factory=RepoConfig)

    @property
    def owner(self) -> str:
        return self.repo.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.repo.split("/", 1)[1]

    def transaction(self):
        return self.services.storage.transaction()

    def round(self, session) -> Round:
        return get_round(session, self.task_id, self.number)


def _start(services: Services, task_id: int, number: int, step_done: StepHook) -> Applying | None:
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        repository = installations.active_repository(session, task.repo_full_name)
        if repository is None:
            return None
        installation_id, repo = repository.installation_id, task.repo_full_name
    client = services.github.as_installation(installation_id)
    return Applying(services, task_id, number, repo, client, step_done, repo_config.load(services, client, repo))


def apply_round(services: Services, task_id: int, number: int, *, step_done: StepHook = _nothing) -> str:
    """Put the round's accepted outputs on both PRs and open it. Returns the round's status."""
    with services.storage.transaction() as session:
        round_ = get_round(session, task_id, number)
        if round_.status not in (RoundStatus.APPLYING, RoundStatus.OPEN) or number == 1:
            return round_.status
    applying = _start(services, task_id, number, step_done)
    if applying is None:
        return _fail(services, task_id, number, "Tandem is no longer installed on the mirror (or it is suspended)")
    try:
        _push(applying)
    except gitops.BranchMoved as exc:
        letters = _letters_of_branches(applying, exc.branches)
        return _fail(
            services, task_id, number,
            f"{' and '.join(f'Option {letter}' for letter in letters)} changed on GitHub since Tandem last pushed "
            f"(someone pushed to {'its branch' if len(letters) == 1 else 'their branches'}): round {number}'s "
            "commits were not pushed and nothing was overwritten",
            applying,
        )
    _show_conversation(applying)
    _request_reviews(applying)
    for letter in ("A", "B"):
        _ensure_check_run(applying, letter)
    with applying.transaction() as session:
        round_ = applying.round(session)
        if round_.status == RoundStatus.APPLYING:
            open_round(session, round_)
            pair = round_.task.pair
            for side in pair.sides:
                side.check_run_id = round_.side(side.letter).check_run_id
            pair.shown_state, pair.shown_progress = "pending", None
    step_done("open")
    announce(services, task_id, number, applying)
    return RoundStatus.OPEN


def _letters_of_branches(applying: Applying, branches: list[str]) -> list[str]:
    with applying.transaction() as session:
        sides = session.get(Task, applying.task_id).pair.sides
        return sorted(side.letter for side in sides if side.branch in branches)


def _push(applying: Applying) -> None:
    """Build each side's commit on its head and push both, unless a branch moved."""
    with applying.transaction() as session:
        round_ = applying.round(session)
        if all(side.pushed_at for side in round_.sides):
            return
        by_model = {output["model"]: output for output in round_.outputs}
        builds = [
            (side.letter, side.branch, round_.side(side.letter).parent_sha, by_model[side.output.model])
            for side in round_.task.pair.sides
        ]
        when = round_.submitted_at
    message = f"Task {applying.task_id}: round {applying.number}\n"
    clone = mirrors.clone_of(applying.services, applying.repo)
    with clone.locked():
        clone.fetch()
        heads = {
            letter: clone.build_commit(parent, patch=output["patch"], files=output["files"], message=message, when=when)
            for letter, _branch, parent, output in builds
        }
        clone.push(
            {branch: heads[letter] for letter, branch, _parent, _output in builds},
            expected={branch: parent for _letter, branch, parent, _output in builds},
        )
    applying.step_done("branches pushed")
    with applying.transaction() as session:
        round_ = applying.round(session)
        for side in round_.task.pair.sides:
            side.head_sha = heads[side.letter]
            round_side = round_.side(side.letter)
            round_side.head_sha, round_side.pushed_at = heads[side.letter], utcnow()
    applying.step_done("pushed")


def body(task: Task, letter: str, config: RepoConfig | None, *, upto: int) -> str:
    """A side's PR body: the conversation up to round `upto`, and how to judge."""
    rubric = Rubric.for_task(task, config)
    twin_url = task.pair.side(pr_text.twin(letter)).pr_url if task.pair is not None else None
    return pr_text.body(task.id, letter, conversation(task, upto), rubric, twin_url, help_text(rubric))


def _show_conversation(applying: Applying) -> None:
    """Both PR bodies show every prompt so far; the labels go back to pending (one request per PR)."""
    with applying.transaction() as session:
        round_ = applying.round(session)
        if round_.bodies_shown_at is not None:
            return
        task = round_.task
        updates = [(side.pr_number, body(task, side.letter, applying.config, upto=round_.number)) for side in task.pair.sides]
    labels = [applying.config.labels.tandem, applying.config.labels.pending]
    for number, text in updates:
        applying.client.rest.issues.update(applying.owner, applying.name, number, body=text, labels=labels)
    with applying.transaction() as session:
        applying.round(session).bodies_shown_at = utcnow()
    applying.step_done("conversation shown")


def _request_reviews(applying: Applying) -> None:
    with applying.transaction() as session:
        round_ = applying.round(session)
        if round_.reviews_requested_at is not None:
            return
        raters = list(round_.task.raters)
        numbers = [side.pr_number for side in round_.task.pair.sides]
    for number in numbers if raters else ():
        try:
            applying.client.rest.pulls.request_reviewers(applying.owner, applying.name, number, reviewers=raters)
        except RequestFailed as exc:
            if exc.response.status_code != 422:
                raise
            log.warning("task %s: review request refused for %s", applying.task_id, ", ".join(raters))
    with applying.transaction() as session:
        applying.round(session).reviews_requested_at = utcnow()
    applying.step_done("reviews requested")


def _ensure_check_run(applying: Applying, letter: str) -> None:
    with applying.transaction() as session:
        round_ = applying.round(session)
        round_side = round_.side(letter)
        if round_side.check_run_id is not None:
            return
        head_sha = round_side.head_sha
        summary = pr_text.rounds_summary(round_.task.rounds)
        found = round_side.check_requested_at is not None and _find_check_run(applying, head_sha)
        if not found:
            round_side.check_requested_at = utcnow()
    if not found:
        applying.step_done(f"check {letter} requested")
        found = applying.client.rest.checks.create(
            applying.owner,
            applying.name,
            name=pr_text.CHECK_NAME,
            head_sha=head_sha,
            status="in_progress",
            output={"title": "Awaiting judgment", "summary": summary},
        ).parsed_data
    with applying.transaction() as session:
        applying.round(session).side(letter).check_run_id = found.id
    applying.step_done(f"check {letter} created")


def _find_check_run(applying: Applying, head_sha: str):
    runs = applying.client.rest.checks.list_for_ref(
        applying.owner, applying.name, head_sha, check_name=pr_text.CHECK_NAME, filter_="latest"
    ).parsed_data.check_runs
    return runs[0] if runs else None


# How a round ended, on both PRs -------------------------------------------------------------------


def _marker(task_id: int, number: int) -> str:
    """Hidden in the comment, so a re-run finds the one a dead run posted."""
    return f"<!-- tandem:round:{task_id}:{number} -->"


def _mention(login: str | None) -> str:
    return f"@{login}" if login and _LOGIN.fullmatch(login) else "the rater who asked for it"


def notice(round_: Round) -> str:
    """What both PRs are told of the round: ready, failed or expired (never anything of the models)."""
    marker = _marker(round_.task_id, round_.number)
    if round_.status == RoundStatus.OPEN:
        return (
            f"**Tandem:** round {round_.number} is ready, {_mention(round_.author_login)}: both options have a new "
            f"commit answering the follow-up. Votes in this round judge the new code; the PR body shows the whole "
            f"conversation.\n\n{marker}"
        )
    if round_.closed_reason == ClosedReason.EXPIRED:
        return (
            f"**Tandem:** round {round_.number} expired: the models' answers to {_mention(round_.author_login)}'s "
            f"follow-up did not come in time. Round {round_.number - 1} stays open; a new `/followup` may ask "
            f"again.\n\n{marker}"
        )
    return (
        f"**Tandem:** round {round_.number} failed: {round_.failure_reason}. Round {round_.number - 1} stays open."
        f"\n\n{marker}"
    )


def announce(services: Services, task_id: int, number: int, applying: Applying | None = None) -> None:
    """Post the round's notice on both PRs, once each (a re-run looks a recorded intent up)."""
    with services.storage.transaction() as session:
        round_ = get_round(session, task_id, number)
        if round_.task.pair is None or round_.task.pair.opened_at is None or not round_.sides:
            return  # no PRs to tell
    applying = applying or _start(services, task_id, number, _nothing)
    if applying is None:
        return
    for letter in ("A", "B"):
        _post_notice(applying, letter)


def _post_notice(applying: Applying, letter: str) -> None:
    with applying.transaction() as session:
        round_ = applying.round(session)
        round_side = round_.side(letter)
        if round_side.comment_id is not None:
            return
        pr_number, text = round_.task.pair.side(letter).pr_number, notice(round_)
        requested = round_side.comment_requested_at
        found = requested is not None and _find_notice(applying, pr_number, requested)
        if not found:
            round_side.comment_requested_at = utcnow()
    if not found:
        applying.step_done(f"comment {letter} requested")
        found = applying.client.rest.issues.create_comment(applying.owner, applying.name, pr_number, body=text).parsed_data
    with applying.transaction() as session:
        applying.round(session).side(letter).comment_id = found.id
    applying.step_done(f"comment {letter} posted")


def _find_notice(applying: Applying, pr_number: int, requested):
    marker = _marker(applying.task_id, applying.number)
    since = (requested - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    comments = applying.client.rest.issues.list_comments(
        applying.owner, applying.name, pr_number, since=since, per_page=100
    ).parsed_data
    return next((comment for comment in comments if marker in (comment.body or "")), None)


def _fail(services: Services, task_id: int, number: int, reason: str, applying: Applying | None = None) -> str:
    with services.storage.transaction() as session:
        round_ = get_round(session, task_id, number)
        if round_.status != RoundStatus.CLOSED:
            close_round(session, round_, ClosedReason.FAILED, reason)
    log.info("task %s round %s failed: %s", task_id, number, reason)
    if applying is not None:
        announce(services, task_id, number, applying)
    return RoundStatus.CLOSED


def expire(services: Services) -> list[tuple[int, int]]:
    """Close the rounds whose outputs did not come in time; returns (task id, round) of each."""
    with services.storage.transaction() as session:
        expired = []
        for round_ in expired_rounds(session):
            close_round(
                session, round_, ClosedReason.EXPIRED,
                f"the model runner did not answer within the round timeout (until {round_.expires_at:%Y-%m-%d %H:%M} UTC)",
            )
            expired.append((round_.task_id, round_.number))
    return expired


def give_up(services: Services, task_id: int, number: int, reason: str) -> None:
    """Fail a round whose job kept failing, and tell both PRs if GitHub lets us."""
    with services.storage.transaction() as session:
        if get_round(session, task_id, number).status != RoundStatus.APPLYING:
            return
    _fail(services, task_id, number, reason)
    try:
        announce(services, task_id, number)
    except Exception as exc:  # the round's failure is recorded: that matters more than the notice
        log.warning("task %s round %s: failure notice not posted: %s", task_id, number, type(exc).__name__)
