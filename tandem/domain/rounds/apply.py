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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from githubkit_schemas.latest.types import ReposOwnerRepoCheckRunsCheckRunIdPatchBodyPropOutputType as CheckRunOutput

from tandem.domain import ci_notice, mirrors, pairs, pr_text, repo_config
from tandem.domain.commands import help_text
from tandem.domain.judging import Rubric
from tandem.domain.repo_config import RepoConfig
from tandem.domain.rounds.lifecycle import (
    ClosedReason,
    RoundStatus,
    close_round,
    conversation,
    expired_rounds,
    get_round,
    lock_task,
    open_round,
    record_change,
)
from tandem.domain.vocabulary import LOGIN, SIDES
from tandem.infra import gitops, installations
from tandem.infra.db import utcnow
from tandem.infra.errors import known
from tandem.infra.models import Pair, Round, RoundSide, Task
from tandem.infra.services import Services

log = logging.getLogger(__name__)


# A later round is asked for on an open pair only, and await_outputs gives it both of the pair's sides.
def _pair(round_: Round) -> Pair:
    return known(round_.task.pair, f"task {round_.task_id}'s pair")


def _side(round_: Round, letter: str) -> RoundSide:
    return known(round_.side(letter), f"task {round_.task_id} round {round_.number}'s side {letter}")


@dataclass
class Applying(pairs.Opening):
    """What one run of the job works with: an Opening's, and the round."""

    number: int = 0

    def round(self, session) -> Round:
        return get_round(session, self.task_id, self.number)


def _start(services: Services, task_id: int, number: int, step_done: pairs.StepHook) -> Applying | None:
    with services.storage.transaction() as session:
        task = session.get_one(Task, task_id)
        repository = installations.active_repository(session, task.repo_full_name)
        if repository is None:
            return None
        installation_id, repo = repository.installation_id, task.repo_full_name
    applying = Applying.start(services, task_id, repo, installation_id, step_done)
    applying.number = number
    applying.config = repo_config.load(services, applying.client, repo)
    return applying


def apply_round(services: Services, task_id: int, number: int, *, step_done: pairs.StepHook = pairs.no_hook) -> str:
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
            services,
            task_id,
            number,
            f"{' and '.join(f'Option {letter}' for letter in letters)} changed on GitHub since Tandem last pushed "
            f"(someone pushed to {'its branch' if len(letters) == 1 else 'their branches'}): round {number}'s "
            "commits were not pushed and nothing was overwritten",
            applying,
        )
    _show_conversation(applying)
    _request_reviews(applying)
    for letter in SIDES:
        _ensure_check_run(applying, letter)
    _retire_old_check_runs(applying)
    with applying.transaction() as session:
        round_ = applying.round(session)
        if round_.status == RoundStatus.APPLYING:
            _open(session, round_)
            notice = ci_notice.on_open(session, round_, applying.installation_id, applying.repo, applying.config)
        else:
            notice = None
    ci_notice.dispatch(services, notice)
    step_done("open")
    announce(services, task_id, number, applying)
    return RoundStatus.OPEN


def _open(session, round_: Round) -> None:
    """Open a round whose commits are on both PRs: votes from now on are its own, on its heads."""
    open_round(session, round_)
    pair = _pair(round_)
    for side in pair.sides:
        side.check_run_id = _side(round_, side.letter).check_run_id
    pair.shown_state, pair.shown_progress = "pending", None


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
        what = f"task {applying.task_id} round {applying.number}'s"
        by_model = {output["model"]: output for output in known(round_.outputs, f"{what} outputs")}
        builds = [
            (
                side.letter,
                side.branch,
                known(_side(round_, side.letter).parent_sha, f"{what} parent of {side.letter}"),
                by_model[side.output.model],
            )
            for side in _pair(round_).sides
        ]
        when = known(round_.submitted_at, f"{what} submission time")
        base_sha = known(round_.task.base_sha, f"task {applying.task_id}'s base")
    message = f"Task {applying.task_id}: round {applying.number}\n"
    clone = mirrors.clone_of(applying.services, applying.repo)
    with clone.locked():
        clone.fetch()
        heads = {
            letter: clone.build_commit(parent, patch=output["patch"], files=output["files"], message=message, when=when)
            for letter, _branch, parent, output in builds
        }
        changes = {letter: clone.change(base_sha, head) for letter, head in heads.items()}
        clone.push(
            {branch: heads[letter] for letter, branch, _parent, _output in builds},
            expected={branch: parent for _letter, branch, parent, _output in builds},
        )
    applying.step_done("branches pushed")
    with applying.transaction() as session:
        round_ = applying.round(session)
        for side in _pair(round_).sides:
            side.head_sha = heads[side.letter]
            round_side = _side(round_, side.letter)
            round_side.head_sha, round_side.pushed_at = heads[side.letter], utcnow()
            record_change(round_, side.letter, *changes[side.letter])
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
        updates = [
            (
                known(side.pr_number, f"side {side.letter}'s PR"),
                body(task, side.letter, applying.config, upto=round_.number),
            )
            for side in _pair(round_).sides
        ]
    labels = applying.pending_labels()
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
        numbers = [known(side.pr_number, f"side {side.letter}'s PR") for side in _pair(round_).sides]
    pairs.ask_for_reviews(applying, numbers, raters)
    with applying.transaction() as session:
        applying.round(session).reviews_requested_at = utcnow()
    applying.step_done("reviews requested")


def _create_once(
    applying: Applying, letter: str, kind: str, details: Callable, find: Callable, create: Callable
) -> None:
    """Create a side's check run or comment once: the intent is recorded before the request, so
    a re-run after it looks up what a dead run created instead of creating another."""
    requested_at, created_id = f"{kind}_requested_at", f"{kind}_id"
    with applying.transaction() as session:
        round_ = applying.round(session)
        round_side = _side(round_, letter)
        if getattr(round_side, created_id) is not None:
            return
        what = details(round_)
        requested = getattr(round_side, requested_at)
        found = requested is not None and find(what, requested)
        if not found:
            setattr(round_side, requested_at, utcnow())
    if not found:
        applying.step_done(f"{kind} {letter} requested")
        found = create(what)
    with applying.transaction() as session:
        setattr(_side(applying.round(session), letter), created_id, found.id)
    applying.step_done(f"{kind} {letter} created")


def _ensure_check_run(applying: Applying, letter: str) -> None:
    def details(round_: Round) -> tuple[str, str]:
        return known(_side(round_, letter).head_sha, f"round side {letter}'s head"), pr_text.rounds_summary(
            round_.task.rounds
        )

    def create(what: tuple[str, str]):
        head_sha, summary = what
        return applying.client.rest.checks.create(
            applying.owner,
            applying.name,
            name=pr_text.CHECK_NAME,
            head_sha=head_sha,
            status="in_progress",
            output={"title": "Awaiting judgment", "summary": summary},
        ).parsed_data

    _create_once(
        applying, letter, "check_run", details, lambda what, _at: pairs.find_check_run(applying, what[0]), create
    )


def _retire_old_check_runs(applying: Applying) -> None:
    """The round before's check runs end as neutral, so its heads do not show judging forever."""
    with applying.transaction() as session:
        round_ = applying.round(session)
        old = [
            side.check_run_id
            for side in _pair(round_).sides
            if side.check_run_id not in (None, _side(round_, side.letter).check_run_id)
        ]
    output: CheckRunOutput = {
        "title": f"Superseded by round {applying.number}",
        "summary": "Judging goes on at the new head.",
    }
    for check_run_id in old:
        applying.client.rest.checks.update(
            applying.owner, applying.name, check_run_id, status="completed", conclusion="neutral", output=output
        )
    applying.step_done("old check runs retired")


# How a round ended, on both PRs -------------------------------------------------------------------


def _marker(task_id: int, number: int) -> str:
    """Hidden in the comment, so a re-run finds the one a dead run posted."""
    return f"<!-- tandem:round:{task_id}:{number} -->"


def _mention(login: str | None) -> str:
    # A user's login only: an app ("…[bot]") is not mentioned.
    if login and LOGIN.fullmatch(login) and not login.endswith("[bot]"):
        return f"@{login}"
    return "the rater who asked for it"


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
    applying = applying or _start(services, task_id, number, pairs.no_hook)
    if applying is None:
        return
    for letter in SIDES:
        _post_notice(applying, letter)


def _post_notice(applying: Applying, letter: str) -> None:
    def details(round_: Round) -> tuple[int, str]:
        return known(_pair(round_).side(letter).pr_number, f"side {letter}'s PR"), notice(round_)

    def create(what: tuple[int, str]):
        pr_number, text = what
        return applying.client.rest.issues.create_comment(
            applying.owner, applying.name, pr_number, body=text
        ).parsed_data

    _create_once(applying, letter, "comment", details, lambda what, at: _find_notice(applying, what[0], at), create)


def _find_notice(applying: Applying, pr_number: int, requested):
    marker = _marker(applying.task_id, applying.number)
    since = (requested - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    comments = applying.client.rest.issues.list_comments(
        applying.owner, applying.name, pr_number, since=since, per_page=100
    ).parsed_data
    # githubkit's IssuesClient has a method named `list`, which its annotations then mean instead of the
    # builtin (an upstream bug, its pull request 184): mypy cannot see the parsed list as iterable.
    found = (comment for comment in comments if marker in (comment.body or ""))  # type: ignore[attr-defined]
    return next(found, None)


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
            # Outputs may have been accepted since the read: decide under the task's lock, on
            # the round as it is now, so an accepted round is never closed over.
            lock_task(session, round_.task_id)
            session.refresh(round_)
            if round_.status != RoundStatus.AWAITING_OUTPUTS:
                continue
            close_round(
                session,
                round_,
                ClosedReason.EXPIRED,
                "the model runner did not answer within the round timeout "
                f"(until {round_.expires_at:%Y-%m-%d %H:%M} UTC)",
            )
            expired.append((round_.task_id, round_.number))
    return expired


def give_up(services: Services, task_id: int, number: int, reason: str) -> None:
    """Fail a round whose job kept failing, and tell both PRs if GitHub lets us. A round whose
    commits are on both PRs already is opened instead: raters now review its code, so their votes
    are its own; what GitHub refused after the push (the PR bodies, reviews asked, check runs) stays
    undone, and is logged."""
    with services.storage.transaction() as session:
        round_ = get_round(session, task_id, number)
        if round_.status != RoundStatus.APPLYING:
            return
        pushed = all(side.pushed_at for side in round_.sides)
        if pushed:
            _open(session, round_)
    if pushed:
        log.warning("task %s round %s opened without all of its GitHub updates: %s", task_id, number, reason)
    else:
        _fail(services, task_id, number, reason)
    try:
        announce(services, task_id, number)
    except Exception as exc:  # the round's state is recorded: that matters more than the notice
        log.warning("task %s round %s: notice not posted: %s", task_id, number, type(exc).__name__, exc_info=True)
