"""CI results of each side, per round: what the mirror's own CI (GitHub Actions, or any app that
posts check runs or commit statuses) reported on the heads of a task's PRs.

Each check is kept once, at its latest report (CiCheck): a check run by its app and name, a check
suite by its app, a commit status by its sender and context; a report older than the one kept is
ignored, so late or repeated deliveries change nothing. "Older" is by GitHub's id of the report
and its progress (queued, running, completed), never by the payload's times, which the reporter
sets: no report can rewind another's, or claim to be later than it is. Tandem's own check run is
never a check. A side's state on a head is summed up from its checks: failure if any failed, else
pending while any runs, else success if any passed, else neutral; None while nothing has reported.

Nothing here is ever written to GitHub but "CI has finished": the results are the mirror's, and
they say nothing of the models.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from tandem.domain.vocabulary import SIDES
from tandem.infra import bulk
from tandem.infra.models import CiCheck, Pair, Round, RoundSide, Side, Task


class CiState(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"


class CheckKind(StrEnum):
    CHECK_RUN = "check_run"
    CHECK_SUITE = "check_suite"
    STATUS = "status"


# Conclusions of check runs and suites, and states of commit statuses.
_FAILED = {"failure", "timed_out", "cancelled", "action_required", "startup_failure", "error"}
_PASSED = {"success"}


def state_of(status: str | None, conclusion: str | None) -> CiState:
    """A check run's or suite's state from its status and conclusion; a commit status's from its
    state (pass it as ``conclusion``, with status "completed" unless it is "pending")."""
    if status != "completed" or conclusion is None:
        return CiState.PENDING
    if conclusion in _FAILED:
        return CiState.FAILURE
    return CiState.SUCCESS if conclusion in _PASSED else CiState.NEUTRAL


def progress(status: str | None) -> int:
    """How far a check run or suite has got (a commit status is always one report): queued 0,
    running 1, completed 2. GitHub only moves a check forward, so a lower one arrived late."""
    return {"queued": 0, "completed": 2}.get(status or "", 1)


def record(
    session: Session,
    repo: str,
    head_sha: str,
    *,
    kind: CheckKind,
    source: str,
    name: str,
    order: tuple[int, int],
    state: CiState,
    url: str | None,
    reported_at: datetime,
    delivery_id: str,
) -> set[int]:
    """Keep one check's report on ``head_sha`` for every task with a side at that head (now or
    in a round); return those tasks' ids. ``order`` is (GitHub's id of the report, its progress);
    ``reported_at`` is when Tandem recorded it."""
    sides = session.execute(
        select(Pair.task_id, Side.letter)
        .join(Side, Side.pair_id == Pair.id)
        .where(Side.repo_full_name == repo, Side.head_sha == head_sha)
        .union(
            select(Round.task_id, RoundSide.letter)
            .join(RoundSide, RoundSide.round_id == Round.id)
            .join(Task, Task.id == Round.task_id)
            .where(Task.repo_full_name == repo, RoundSide.head_sha == head_sha)
        )
    ).all()
    for task_id, letter in sides:
        row = session.scalars(
            select(CiCheck).where(
                CiCheck.task_id == task_id,
                CiCheck.head_sha == head_sha,
                CiCheck.kind == kind,
                CiCheck.source == source,
                CiCheck.name == name,
            )
        ).first()
        if row is None:
            row = CiCheck(task_id=task_id, letter=letter, head_sha=head_sha, kind=kind, source=source, name=name)
            session.add(row)
        elif (row.report_id, row.progress) > order:  # a report older than the one kept
            continue
        row.report_id, row.progress = order
        row.state, row.url, row.reported_at, row.delivery_id = state, url, reported_at, delivery_id
    session.flush()
    return {task_id for task_id, _letter in sides}


def summary(checks: Iterable[CiCheck]) -> dict[str, Any]:
    """A side's CI on one head: its state, the failing checks (name and link), and when the
    latest report came. A check suite says nothing once its app has reported a check run since:
    the suite was re-run (GitHub tells only the suite's own app that), and its old conclusion
    stands again only when the suite reports once more."""
    checks = list(checks)
    latest_run: dict[str, datetime] = {}
    for check in checks:
        if check.kind == CheckKind.CHECK_RUN:
            latest_run[check.source] = max(check.reported_at, latest_run.get(check.source, check.reported_at))
    standing = [
        check
        for check in checks
        if check.kind != CheckKind.CHECK_SUITE or latest_run.get(check.source, check.reported_at) <= check.reported_at
    ]
    states = {check.state for check in standing}
    if not checks:
        state = None
    elif CiState.FAILURE in states:
        state = CiState.FAILURE
    elif CiState.PENDING in states:
        state = CiState.PENDING
    else:
        state = CiState.SUCCESS if CiState.SUCCESS in states else CiState.NEUTRAL
    failing = [
        {"name": check.name, "url": check.url}
        for check in sorted(checks, key=lambda check: check.name)
        if check.state == CiState.FAILURE and check.kind != CheckKind.CHECK_SUITE
    ]
    reported = max((check.reported_at for check in checks), default=None)
    return {"state": state, "failing": failing, "reported_at": reported}


# Keyed by (task, letter, head); a side with no head (None) has no checks.
Checks = dict[tuple[int, str, str | None], list]  # CiCheck rows


def _checks(bind: Session | Connection, task_ids: set[int], head_shas: set[str]) -> Checks:
    """The checks on these heads, as rows (not objects: the export reads them a batch at a time)."""
    found: Checks = defaultdict(list)
    if task_ids and head_shas:
        for check in bind.execute(
            select(*CiCheck.__table__.columns).where(
                bulk.among(bind, CiCheck.task_id, task_ids), bulk.among(bind, CiCheck.head_sha, head_shas)
            )
        ).all():
            found[(check.task_id, check.letter, check.head_sha)].append(check)
    return found


def heads_state(session: Session, task_id: int, head_sha_a: str | None, head_sha_b: str | None) -> tuple:
    """Each side's CI state on these heads now: (state of A, state of B)."""
    heads = {"A": head_sha_a, "B": head_sha_b}
    found = _checks(session, {task_id}, {sha for sha in heads.values() if sha})
    return tuple(summary(found.get((task_id, letter, heads[letter]), []))["state"] for letter in SIDES)


def rounds_ci(bind: Session | Connection, round_ids: Iterable[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """Each round's CI per side, on the heads the round put on the PRs: {round: {letter: summary}}."""
    heads = bind.execute(
        select(RoundSide.round_id, Round.task_id, RoundSide.letter, RoundSide.head_sha)
        .join(Round, Round.id == RoundSide.round_id)
        .where(bulk.among(bind, RoundSide.round_id, set(round_ids)), RoundSide.head_sha.is_not(None))
    ).all()
    found = _checks(bind, {task_id for _r, task_id, _l, _s in heads}, {sha for *_rest, sha in heads if sha})
    result: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for round_id, task_id, letter, sha in heads:
        result[round_id][letter] = summary(found.get((task_id, letter, sha), []))
    return result


def finished_at(round_ci: dict[str, dict[str, Any]]) -> datetime | None:
    """When both sides' CI had finished (its latest report), or None while a side has no report
    or a check still runs."""
    sides = [round_ci.get(letter, {}) for letter in SIDES]
    if any(side.get("state") in (None, CiState.PENDING) for side in sides):
        return None
    return max(side["reported_at"] for side in sides)


def view(round_ci: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A round's CI as the API and the export show it: each side's state and failing checks."""
    return {
        letter: {
            "state": round_ci.get(letter, {}).get("state"),
            "failing": round_ci.get(letter, {}).get("failing", []),
        }
        for letter in SIDES
    }
