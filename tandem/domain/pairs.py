"""Opening a task's pair of blinded draft PRs on its mirror repository.

Every step can be re-run: state reached on GitHub is recorded as soon as it exists, creation
requests are preceded by a recorded intent so a re-run looks up what a dead run created, and
the commits are deterministic (same tree, parent, neutral author and timestamp), so the push of
a re-run is a no-op. So a job killed anywhere and run again converges on exactly one pair.

Blinding: which output is A is drawn with `secrets` per task and stored only in the database;
branch names are random; both commits share author, time and message; the PRs are created in
letter order; their text is built from the prompt and the task id alone.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from githubkit import GitHub
from githubkit.exception import RequestFailed
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from tandem.domain import ci_notice, mirrors, pr_text, repo_config, rounds
from tandem.domain.commands import help_text
from tandem.domain.judging import Rubric
from tandem.domain.repo_config import RepoConfig
from tandem.domain.task_spec import output_label, same_change
from tandem.domain.vocabulary import SIDES, TaskStatus
from tandem.infra import gitops, installations, metrics
from tandem.infra.db import utcnow
from tandem.infra.errors import TandemError
from tandem.infra.models import Pair, Side, Task
from tandem.infra.services import Services

log = logging.getLogger(__name__)

# Called with each step's name once it is done; tests pass one to kill a run after any step.
StepHook = Callable[[str], None]


def no_hook(_step: str) -> None:
    pass


class TaskFailed(TandemError):
    """The task cannot be opened as submitted; its reason is shown to the submitter, and only to
    them (it may name the models, so it never goes to GitHub)."""


@dataclass
class Opening:
    """What one run of open_pair works with."""

    services: Services
    task_id: int
    repo: str
    installation_id: int
    client: GitHub
    config: RepoConfig | None = None
    step_done: StepHook = no_hook

    @classmethod
    def start(
        cls, services: Services, task_id: int, repo: str, installation_id: int, step_done: StepHook = no_hook
    ) -> Self:
        client = services.github.as_installation(installation_id)
        return cls(services, task_id, repo, installation_id, client, step_done=step_done)

    @property
    def owner(self) -> str:
        return self.repo.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.repo.split("/", 1)[1]

    def transaction(self):
        return self.services.storage.transaction()

    def pending_labels(self) -> list[str]:
        """Tandem's labels for a PR awaiting judgment, from the repo's config (loaded before any PR is touched)."""
        if self.config is None:
            raise RuntimeError(f"task {self.task_id}: the repo's config was not loaded")
        return [self.config.labels.tandem, self.config.labels.pending]


def _new_branch(task_id: int) -> str:
    return f"tandem/{task_id}/{secrets.token_hex(4)}"


def ensure_pair(session: Session, task: Task) -> Pair:
    """Draw the positions and branch names once; re-runs reuse them."""
    if task.pair is not None:
        return task.pair
    first, second = task.outputs
    a_is_first = secrets.randbelow(2) == 0
    pair = Pair(task=task, a_is_first_output=a_is_first)
    a_output, b_output = (first, second) if a_is_first else (second, first)
    for letter, output in (("A", a_output), ("B", b_output)):
        pair.sides.append(
            Side(letter=letter, output=output, repo_full_name=task.repo_full_name, branch=_new_branch(task.id))
        )
    session.add(pair)
    session.flush()
    return pair


def side_for_pull_request(session: Session, repo: str, number: int, *, with_pair: bool = False) -> Side | None:
    """The side whose PR this is, if it is one of Tandem's. ``with_pair``: its pair, task and both
    sides come in the same query (a vote reads them all: three more round trips otherwise)."""
    query = select(Side).where(Side.repo_full_name == repo, Side.pr_number == number)
    if with_pair:
        pair = joinedload(Side.pair)
        query = query.options(pair.joinedload(Pair.task), pair.joinedload(Pair.sides))
    return session.scalars(query).unique().first()


def open_pair(services: Services, task_id: int, *, step_done: StepHook = no_hook) -> str:
    """Open (or finish opening) the task's two draft PRs. Returns the task's status.
    ``step_done`` is called with each step's name once it is done."""
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        if task is None or task.status not in (TaskStatus.QUEUED, TaskStatus.OPENING):
            return task.status if task else "missing"
        task.status = TaskStatus.OPENING
        ensure_pair(session, task)
        repository = installations.active_repository(session, task.repo_full_name)
        installation_id = repository.installation_id if repository is not None else None
    if installation_id is None:  # (failed outside the transaction above, which holds the task's row)
        return _fail(services, task_id, f"Tandem is not installed on {task.repo_full_name} (or it is suspended)")
    opening = Opening.start(services, task_id, task.repo_full_name, installation_id, step_done)
    try:
        opening.config = _mirror_config(opening)
    except TaskFailed as exc:  # nothing is on GitHub yet
        return _fail(services, task_id, str(exc))
    try:
        _push_branches(opening)
        opening.step_done("pushed")
        for letter in SIDES:
            _ensure_pull_request(opening, letter)
        _label_and_link(opening)
        opening.step_done("labelled")
        _request_reviews(opening)
        opening.step_done("reviews requested")
        for letter in SIDES:
            _ensure_check_run(opening, letter)
    except TaskFailed as exc:
        return _fail(services, task_id, str(exc), opening)
    except RequestFailed as exc:
        if _is_permanent(exc):
            return _fail(services, task_id, f"GitHub refused {_request(exc)}: HTTP {exc.response.status_code}", opening)
        raise
    with opening.transaction() as session:
        task = session.get(Task, task_id)
        task.pair.opened_at = utcnow()
        metrics.count_on_commit(session, metrics.PAIRS_OPENED)
        rounds.open_first_round(session, task)
        notice = ci_notice.on_open(session, task.rounds[0], opening.installation_id, opening.repo, opening.config)
    ci_notice.dispatch(services, notice)
    opening.step_done("open")
    return "open"


def _is_permanent(exc: RequestFailed) -> bool:
    status = exc.response.status_code
    return 400 <= status < 500 and status not in (401, 403, 408, 409, 429)


def _request(exc: RequestFailed) -> str:
    return f"{exc.request.method} {exc.request.url.path}"


def _mirror_config(opening: Opening) -> RepoConfig:
    try:
        return repo_config.load_mirror(opening.services, opening.client, opening.repo)
    except repo_config.RepoConfigError as exc:
        raise TaskFailed(str(exc)) from None


def _clone(opening: Opening) -> gitops.MirrorClone:
    return mirrors.clone_of(opening.services, opening.repo)


def _push_branches(opening: Opening) -> None:
    """Build both commits from the base and push them atomically (a no-op when already there)."""
    with opening.transaction() as session:
        task = session.get(Task, opening.task_id)
        # In submission order, and failures name the output as submitted: never by its letter,
        # which the submitter never sees.
        sides = sorted(task.pair.sides, key=lambda s: s.output.position)
        builds = [
            (s.letter, output_label(s.output.position, s.output.model), s.output.patch, s.output.files) for s in sides
        ]
        models = [s.output.model for s in sides]
        branches = {s.letter: s.branch for s in sides}
        base, created_at = task.base, task.created_at
        base_sha = task.base_sha
        already = all(side.head_sha for side in sides)
    if already:
        return
    clone = _clone(opening)
    message = f"Task {opening.task_id}: proposed change\n"
    heads = {}
    with clone.locked():
        clone.fetch()
        if base_sha is None:
            base_sha, _branch = _resolve_base(opening, clone, base)
        for letter, label, patch, files in builds:
            try:
                heads[letter] = clone.build_commit(base_sha, patch=patch, files=files, message=message, when=created_at)
            except gitops.OutputDoesNotApply as exc:
                raise TaskFailed(f"{label} does not apply to {base}: {exc}") from None
        if heads["A"] == heads["B"]:  # same tree, parent, author, time and message: one commit
            raise TaskFailed(same_change(models, f"on {base}"))
        changes = {letter: clone.change(base_sha, sha) for letter, sha in heads.items()}
        clone.push({branches[letter]: sha for letter, sha in heads.items()})
        opening.step_done("branches pushed")
    with opening.transaction() as session:
        task = session.get(Task, opening.task_id)
        first = next((round_ for round_ in task.rounds if round_.number == 1), None)
        for side in task.pair.sides:
            side.head_sha = heads[side.letter]
            if first is not None:  # a task recorded before rounds has none: its export falls back
                rounds.record_change(first, side.letter, *changes[side.letter])


def _resolve_base(opening: Opening, clone: gitops.MirrorClone, base: str) -> tuple[str, str]:
    """Resolve the base once and record it before anything is pushed: a re-run after a push whose
    heads were not recorded must rebuild the very same commits, even if the base branch moved."""
    try:
        base_sha, base_branch = clone.resolve(base)
    except gitops.OutputDoesNotApply as exc:
        raise TaskFailed(str(exc)) from None
    with opening.transaction() as session:
        task = session.get(Task, opening.task_id)
        task.base_sha, task.base_branch = base_sha, base_branch
    return base_sha, base_branch


def _body(opening: Opening, task: Task, letter: str, twin_url: str | None) -> str:
    """A side's PR body, with the rubric raters will be held to: the task's axes, if it has some."""
    rubric = Rubric.for_task(task, opening.config)
    return pr_text.body(opening.task_id, letter, rounds.conversation(task, 1), rubric, twin_url, help_text(rubric))


def _ensure_pull_request(opening: Opening, letter: str) -> None:
    with opening.transaction() as session:
        task = session.get(Task, opening.task_id)
        side = task.pair.side(letter)
        if side.pr_number is not None:
            return
        body = _body(opening, task, letter, task.pair.side(pr_text.twin(letter)).pr_url)
        branch, base_branch = side.branch, task.base_branch
        looked_up = side.pr_requested_at is not None and _find_pull_request(opening, branch)
        if not looked_up:
            side.pr_requested_at = utcnow()
    if not looked_up:
        opening.step_done(f"PR {letter} requested")
        try:
            looked_up = opening.client.rest.pulls.create(
                opening.owner,
                opening.name,
                title=pr_text.title(opening.task_id, letter),
                head=branch,
                base=base_branch,
                body=body,
                draft=True,
                maintainer_can_modify=False,
            ).parsed_data
        except RequestFailed as exc:
            # GitHub answers 422 when an open PR for this head already exists: a dead run made it.
            if exc.response.status_code != 422 or not (looked_up := _find_pull_request(opening, branch)):
                raise
    with opening.transaction() as session:
        side = session.get(Task, opening.task_id).pair.side(letter)
        side.pr_number, side.pr_url = looked_up.number, looked_up.html_url
    opening.step_done(f"PR {letter} opened")


def _find_pull_request(opening: Opening, branch: str):
    found = opening.client.rest.pulls.list(
        opening.owner, opening.name, head=f"{opening.owner}:{branch}", state="all", per_page=1
    ).parsed_data
    return found[0] if found else None


def _label_and_link(opening: Opening) -> None:
    """A's body gains the link to B (B was opened knowing A); both get Tandem's labels."""
    with opening.transaction() as session:
        task = session.get(Task, opening.task_id)
        if task.pair.shown_state is not None:
            return
        a, b = task.pair.side("A"), task.pair.side("B")
        a_number, b_number = a.pr_number, b.pr_number
        a_body = _body(opening, task, "A", b.pr_url)
    labels = opening.pending_labels()
    opening.client.rest.issues.update(opening.owner, opening.name, a_number, body=a_body, labels=labels)
    opening.client.rest.issues.update(opening.owner, opening.name, b_number, labels=labels)
    with opening.transaction() as session:
        session.get(Task, opening.task_id).pair.shown_state = "pending"


def _request_reviews(opening: Opening) -> None:
    with opening.transaction() as session:
        task = session.get(Task, opening.task_id)
        if task.pair.reviews_requested_at is not None:
            return
        raters = list(task.raters)
        numbers = [side.pr_number for side in task.pair.sides]
    ask_for_reviews(opening, numbers, raters)
    with opening.transaction() as session:
        session.get(Task, opening.task_id).pair.reviews_requested_at = utcnow()


def ask_for_reviews(opening: Opening, numbers: list[int], raters: list[str]) -> None:
    for number in numbers if raters else ():
        try:
            opening.client.rest.pulls.request_reviewers(opening.owner, opening.name, number, reviewers=raters)
        except RequestFailed as exc:
            if exc.response.status_code != 422:
                raise
            # A rater who cannot be asked (not a collaborator) must not sink the pair.
            log.warning("task %s: review request refused for %s", opening.task_id, ", ".join(raters))


def _ensure_check_run(opening: Opening, letter: str) -> None:
    with opening.transaction() as session:
        side = session.get(Task, opening.task_id).pair.side(letter)
        if side.check_run_id is not None:
            return
        head_sha = side.head_sha
        found = side.check_requested_at is not None and find_check_run(opening, head_sha)
        if not found:
            side.check_requested_at = utcnow()
    if not found:
        opening.step_done(f"check {letter} requested")
        found = opening.client.rest.checks.create(
            opening.owner,
            opening.name,
            name=pr_text.CHECK_NAME,
            head_sha=head_sha,
            status="in_progress",
            output={"title": "Awaiting judgment", "summary": "No judgment recorded yet."},
        ).parsed_data
    with opening.transaction() as session:
        session.get(Task, opening.task_id).pair.side(letter).check_run_id = found.id
    opening.step_done(f"check {letter} created")


def find_check_run(opening: Opening, head_sha: str):
    runs = opening.client.rest.checks.list_for_ref(
        opening.owner, opening.name, head_sha, check_name=pr_text.CHECK_NAME, filter_="latest"
    ).parsed_data.check_runs
    return runs[0] if runs else None


def _fail(services: Services, task_id: int, reason: str, opening: Opening | None = None) -> str:
    """Mark the task failed and take back whatever this task put on GitHub."""
    if opening is not None:
        try:
            _take_back(opening)
        except Exception as exc:  # the reason the task failed matters more than the cleanup's
            log.warning("task %s: cleanup incomplete: %s", task_id, type(exc).__name__, exc_info=True)
            reason += " (cleanup on GitHub incomplete: close its PRs and delete its tandem/ branches by hand)"
    with services.storage.transaction() as session:
        task = session.get_one(Task, task_id)
        task.status, task.failure_reason = TaskStatus.FAILED, reason
        rounds.fail_first_round(session, task, reason)
    log.info("task %s failed: %s", task_id, reason)
    return "failed"


def _take_back(opening: Opening) -> None:
    with opening.transaction() as session:
        task = session.get(Task, opening.task_id)
        if task.pair is None:
            return
        sides = [(side.branch, side.pr_number, side.pr_requested_at) for side in task.pair.sides]
    for branch, number, requested in sides:
        if number is None and requested is not None:
            found = _find_pull_request(opening, branch)
            number = found.number if found else None
        if number is not None:
            opening.client.rest.pulls.update(opening.owner, opening.name, number, state="closed")
    # The push may have landed even if the run died before recording it: ask the mirror.
    clone = _clone(opening)
    with clone.locked():
        clone.delete_branches([branch for branch, _number, _requested in sides])


def give_up(services: Services, task_id: int, reason: str) -> None:
    """Fail a task whose opening kept failing, cleaning up as far as GitHub lets us."""
    with services.storage.transaction() as session:
        task = session.get(Task, task_id)
        if task is None or task.status not in (TaskStatus.QUEUED, TaskStatus.OPENING):
            return
        repository = installations.active_repository(session, task.repo_full_name)
    opening = None
    if repository is not None:
        opening = Opening.start(services, task_id, task.repo_full_name, repository.installation_id)
    _fail(services, task_id, reason, opening)
