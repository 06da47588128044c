"""Verdicts as numbers, shared by the formats. A strength is a margin of 1, 2 or 3 (slightly,
clearly, much; a bare ``/prefer A`` records clearly); a tie or neither has none (0)."""

from __future__ import annotations

from tandem.domain.vocabulary import DEFAULT_STRENGTH, SIDES, Strength

MARGINS = {strength: margin for margin, strength in enumerate(Strength, start=1)}


def margin(row: dict) -> int:
    """How strongly the vote prefers its side: 1..3, or 0 for a tie or neither."""
    if row["verdict"] not in SIDES:
        return 0
    return MARGINS[row["strength"] or DEFAULT_STRENGTH]


def twin(letter: str) -> str:
    return "B" if letter == "A" else "A"
