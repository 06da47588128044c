"""The rule that derives a rater's vote from the versions of their comments (tandem.domain.history.runs),
on plain records: no database, so hypothesis can try many logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.domain.history import UNDO, VOTE, Slot, Version, runs

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
VOTES = ({"verdict": "A"}, {"verdict": "B"}, {"verdict": "tie"}, None)  # None: a version without /prefer


@st.composite
def logs(draw) -> tuple[list[Version], set[int]]:
    """One rater's log in a round: comments 1-4, each an /undo or 1-3 versions of a vote (the
    first as created, the others edits), at distinct minutes; and which comments were deleted."""
    versions = []
    minutes = iter(draw(st.lists(st.integers(0, 300), min_size=12, max_size=12, unique=True)))
    comment_ids = range(1, draw(st.integers(1, 4)) + 1)
    for comment_id in comment_ids:
        if draw(st.integers(0, 3)) == 0:
            versions.append(Version(comment_id, UNDO, T0 + timedelta(minutes=next(minutes)), False, True))
            continue
        times = sorted(T0 + timedelta(minutes=next(minutes)) for _ in range(draw(st.integers(1, 3))))
        for number, at in enumerate(times):
            versions.append(Version(comment_id, VOTE, at, number > 0, draw(st.sampled_from(VOTES))))
    deleted = set(draw(st.lists(st.sampled_from(list(comment_ids)), unique=True)))
    return versions, deleted


def described(slots: list[Slot]) -> list[tuple]:
    """The slots with their fates, each replacement named by its comment and time."""
    return [
        (s.comment_id, s.at, s.until, repr(s.value), s.fate and (s.fate[0], s.fate[1] and s.fate[1].at, s.fate[2]))
        for s in slots
    ]


@settings(max_examples=300, derandomize=True)
@given(log=logs(), data=st.data())
def test_the_order_the_versions_arrive_in_never_counts(log, data):
    versions, deleted = log
    shuffled = data.draw(st.permutations(versions))
    assert described(runs(shuffled, deleted, VOTE)) == described(runs(versions, deleted, VOTE))


@settings(max_examples=300, derandomize=True)
@given(log=logs())
def test_versions_logged_twice_change_nothing(log):
    versions, deleted = log
    assert described(runs(versions + versions, deleted, VOTE)) == described(runs(versions, deleted, VOTE))


@settings(max_examples=300, derandomize=True)
@given(log=logs())
def test_the_raters_latest_word_stands(log):
    """At most one vote is current; a later version replaces an earlier one, never the other way
    round; the last version written decides when it changes its comment's vote or is an /undo."""
    versions, deleted = log
    slots = runs(versions, deleted, VOTE)
    current = [slot for slot in slots if slot.fate is None]
    assert len(current) <= 1
    for slot in slots:
        if slot.fate is not None and slot.fate[1] is not None:
            assert slot.fate[1].at > slot.at
    latest = max(versions, key=lambda version: version.written_at)
    before = [v for v in versions if v.comment_id == latest.comment_id and v.written_at < latest.written_at]
    changes = not before or max(before, key=lambda version: version.written_at).value != latest.value
    if latest.target == VOTE and latest.value is not None and changes and latest.comment_id not in deleted:
        assert [(slot.comment_id, slot.value) for slot in current] == [(latest.comment_id, latest.value)]
    if latest.target == UNDO:
        assert current == []
    if latest.target == VOTE and latest.value is None:  # an edit that removed its comment's vote
        assert latest.comment_id not in [slot.comment_id for slot in current]
