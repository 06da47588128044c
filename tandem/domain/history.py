"""A rater's vote and scores in a round, derived from the history of the comments that wrote them.

Every version of a comment that is processed is logged (CommandVersion): what it holds of the
rater's vote, or of one score (a side and an axis), or nothing; and whether it holds /undo.
Deleted comments are logged too (DeletedComment). The judgments and ratings are then derived
from the whole log, replayed in the order it was written, never in the order it arrived; so no
processing order can bring back a retracted vote. Replaying one target (the vote, or one score):

* A comment's versions, in time order (the comment as created before an edit of the same
  second), make runs: consecutive versions holding the same value are one vote, recorded once,
  at the time the run began. A run holding nothing (an edit that removed the command) ends the
  comment's vote if it is the current one (reason "edited").
* A new value supersedes the current one: "edited" if it is the same comment's, else "revote".
* An /undo, at the time of the first version of its comment that holds it, ends the vote
  current then (reason "undo"). Deleting the /undo's comment does not bring the vote back.
* A deleted comment ends, right after its last version, its own vote if that is still current
  (reason "deleted"). GitHub does not say when a comment was deleted; nothing between its last
  version and its deletion can depend on when it was, since a later vote, an /undo or the
  deletion all leave the comment's vote retracted.

Ties of time between comments go by comment id (GitHub's ids grow with time).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tandem.domain.vocabulary import SupersededReason
from tandem.infra.db import utcnow
from tandem.infra.models import CommandVersion, DeletedComment, Judgment, Rating

VOTE = "vote"
UNDO = "undo"
# An edit's list of the scores it gives: it holds nothing of the others, even of those it is
# processed before.
SCORES = "scores"


def score_target(side: str, axis: str) -> str:
    return f"{side}:{axis}"


def is_score(target: str) -> bool:
    return ":" in target


def split_score_target(target: str) -> tuple[str, str]:
    side, _, axis = target.partition(":")
    return side, axis


@dataclass
class Slot:
    """One run of a comment's versions holding the same value: one judgment or rating row."""

    comment_id: int
    at: datetime  # when the run began
    until: datetime | None  # when the comment's next run began
    value: Any
    delivery_id: str
    fate: tuple[SupersededReason, Slot | None, int] | None = (
        None  # (reason, replaced by, ended by comment); None: current
    )

    def holds(self, at: datetime) -> bool:
        # An edit in the same second as the version before it makes a run that begins and ends
        # at one time.
        return self.at <= at and (self.until is None or at < self.until or at == self.at)


def log_version(
    session: Session,
    *,
    task_id: int,
    round_id: int,
    rater_id: int,
    comment_id: int,
    target: str,
    written_at: datetime,
    edited: bool,
    value: Any,
    delivery_id: str,
) -> None:
    """Record what one version of a comment holds of ``target`` (None: nothing)."""
    row = session.scalars(
        select(CommandVersion).where(
            CommandVersion.comment_id == comment_id,
            CommandVersion.target == target,
            CommandVersion.written_at == written_at,
            CommandVersion.edited == edited,
        )
    ).first()
    if row is None:
        session.add(
            CommandVersion(
                task_id=task_id,
                round_id=round_id,
                rater_id=rater_id,
                comment_id=comment_id,
                target=target,
                written_at=written_at,
                edited=edited,
                value=value,
                delivery_id=delivery_id,
            )
        )
    elif row.value != value:  # two edits in one second: the one processed last is all we can know
        row.value = value
    session.flush()


def is_deleted(session: Session, comment_id: int) -> bool:
    return session.get(DeletedComment, comment_id) is not None


def targets_of(session: Session, comment_id: int) -> list[tuple[int, int, str]]:
    """The (round, rater, target) the comment's versions hold something of."""
    query = select(CommandVersion.round_id, CommandVersion.rater_id, CommandVersion.target).distinct()
    return [
        (round_id, rater_id, target)
        for round_id, rater_id, target in session.execute(query.where(CommandVersion.comment_id == comment_id))
    ]


@dataclass(frozen=True)
class Version:
    """What one version of a comment holds of one target, as logged (CommandVersion)."""

    comment_id: int
    target: str
    written_at: datetime
    edited: bool  # False: the comment as created (first among versions of the same second)
    value: Any
    delivery_id: str = ""


def replay(session: Session, round_id: int, rater_id: int, target: str) -> list[Slot]:
    """The slots of the rater's ``target`` in the round, from the log (see ``runs``)."""
    rows = session.scalars(
        select(CommandVersion).where(
            CommandVersion.round_id == round_id,
            CommandVersion.rater_id == rater_id,
            CommandVersion.target.in_(_read_for(target)),
        )
    ).all()
    versions = [Version(r.comment_id, r.target, r.written_at, r.edited, r.value, r.delivery_id) for r in rows]
    comment_ids = {version.comment_id for version in versions}
    deleted = session.scalars(select(DeletedComment.comment_id).where(DeletedComment.comment_id.in_(comment_ids)))
    return runs(versions, set(deleted), target)


def runs(versions: Iterable[Version], deleted: Collection[int], target: str) -> list[Slot]:
    """The slots of ``target`` (the vote, or one score) that one rater's versions in one round
    make, each with its fate, by comment and then time: the rule of this module's docstring, on
    plain records. ``versions`` may come in any order and hold other targets; there is one per
    comment, target, time and ``edited``. ``deleted``: the ids of the comments that were deleted."""
    chosen = [version for version in versions if version.target in _read_for(target)]
    chosen.sort(key=lambda version: (version.comment_id, version.written_at, version.edited))
    events: list[tuple[tuple, str, Any]] = []  # (sort key, kind, slot or comment id)
    slots: list[Slot] = []
    last: dict[int, datetime] = {}
    undone: dict[int, datetime] = {}
    for version in _with_omissions(chosen, target):
        if version.target == UNDO:
            undone.setdefault(version.comment_id, version.written_at)  # the first version holding it
            continue
        last[version.comment_id] = version.written_at
        mine = [slot for slot in slots if slot.comment_id == version.comment_id]
        previous = mine[-1] if mine else None
        if previous is not None and previous.until is None and previous.value == version.value:
            continue  # the same value again: the run goes on
        if previous is not None and previous.until is None:
            previous.until = version.written_at
        slot = Slot(version.comment_id, version.written_at, None, version.value, version.delivery_id)
        slots.append(slot)
        events.append(((slot.at, slot.comment_id, 0, len(events)), "run", slot))
    for comment_id, at in undone.items():
        events.append(((at, comment_id, 1, len(events)), "undo", comment_id))
    for comment_id in set(deleted) & set(last):
        events.append(((last[comment_id], comment_id, 2, len(events)), "deleted", comment_id))

    current: Slot | None = None
    for _key, kind, what in sorted(events, key=lambda event: event[0]):
        if kind == "run" and what.value is not None:
            if current is not None:
                reason = SupersededReason.EDITED if current.comment_id == what.comment_id else SupersededReason.REVOTE
                current.fate = (reason, what, what.comment_id)
            current = what
        elif kind == "run":  # the comment no longer holds it
            if current is not None and current.comment_id == what.comment_id:
                current.fate, current = (SupersededReason.EDITED, None, what.comment_id), None
        elif kind == "undo":
            if current is not None:
                current.fate, current = (SupersededReason.UNDO, None, what), None
        elif current is not None and current.comment_id == what:
            current.fate, current = (SupersededReason.DELETED, None, what), None
    return [slot for slot in slots if slot.value is not None]


def _read_for(target: str) -> tuple[str, str]:
    """The targets whose versions decide ``target``: itself, and /undo or the edits' score lists."""
    return (target, UNDO) if target == VOTE else (target, SCORES)


def _with_omissions(versions: list[Version], target: str) -> list[Version]:
    """The versions of ``target``, with the edits whose score list leaves it out as holding nothing."""
    given = {(v.comment_id, v.written_at, v.edited) for v in versions if v.target == target}
    result = []
    for version in versions:
        if version.target != SCORES:
            result.append(version)
        elif target not in version.value and (version.comment_id, version.written_at, version.edited) not in given:
            result.append(replace(version, target=target, value=None))
    return result


def settle(
    session: Session,
    model: type,
    rows: list,
    slots: list[Slot],
    *,
    same: Callable[[Any, Any], bool],
    add: Callable[[Slot], Any],
) -> tuple[dict[int, Any], list]:
    """Make ``rows`` (the model's rows of one target) match ``slots``: add the missing ones, move
    a row to the time its run now begins, and set each row's supersession to its slot's fate.
    Return ({id(slot): row}, the rows that changed)."""
    written = "voted_at" if model is Judgment else "created_at"
    free = list(rows)
    found: dict[int, Any] = {}
    changed = []
    for slot in slots:
        row = next(
            (
                row
                for row in free
                if row.comment_id == slot.comment_id and slot.holds(getattr(row, written)) and same(row, slot.value)
            ),
            None,
        )
        if row is None:
            row = add(slot)
            changed.append(row)
        else:
            free.remove(row)
            if getattr(row, written) != slot.at:  # a version of the run written earlier came late
                setattr(row, written, slot.at)
                changed.append(row)
        found[id(slot)] = row
    session.flush()
    for slot in slots:
        row = found[id(slot)]
        if slot.fate is None:
            wanted: tuple[SupersededReason | None, int | None, int | None] = (None, None, None)
        else:
            reason, by, by_comment = slot.fate
            wanted = (reason, found[id(by)].id if by is not None else None, by_comment)
        if model is Rating:  # a rating keeps only the reason
            wanted = (wanted[0], None, None)
        if _supersession(row) != wanted or (slot.fate is None) != (row.superseded_at is None):
            _supersede(row, *wanted)
            if row not in changed:
                changed.append(row)
    session.flush()
    return found, changed


def _supersession(row: Judgment | Rating) -> tuple:
    if isinstance(row, Judgment):
        return row.superseded_reason, row.superseded_by_id, row.superseded_by_comment_id
    return row.superseded_reason, None, None


def _supersede(
    row: Judgment | Rating, reason: SupersededReason | None, by_id: int | None, by_comment: int | None
) -> None:
    row.superseded_at = None if reason is None else (row.superseded_at or utcnow())
    row.superseded_reason = reason
    if isinstance(row, Judgment):
        row.superseded_by_id, row.superseded_by_comment_id = by_id, by_comment
