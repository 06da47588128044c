"""Training-ready exports: the raw rows and the formats trainers and leaderboards read.

Each format is a module with ``rows(session, selection)``, built on the raw export's objects
(tandem.domain.export) and the tasks' side changes (tandem.domain.export_formats.context); any of them can be
written as JSON Lines or Parquet (tandem.domain.export_formats.writing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO, Any

from sqlalchemy.orm import Session

from tandem.domain.export_formats import battles, helpsteer3, jsonl, openai_dpo, ratings, trl
from tandem.domain.export_formats.selection import Selection
from tandem.domain.export_formats.writing import write_jsonl, write_parquet
from tandem.infra.errors import TandemError

__all__ = ["FORMATS", "Selection", "format_rows", "write"]

FORMATS: dict[str, Callable[[Session, Selection], Iterator[dict[str, Any]]]] = {
    "jsonl": jsonl.rows,
    "trl": trl.rows,
    "openai-dpo": openai_dpo.rows,
    "helpsteer3": helpsteer3.rows,
    "battles": battles.rows,
    "ratings": ratings.rows,
}


def format_rows(name: str) -> Callable[[Session, Selection], Iterator[dict[str, Any]]]:
    if name not in FORMATS:
        raise TandemError(f"format {name!r}: use one of {', '.join(FORMATS)}")
    return FORMATS[name]


def write(session: Session, name: str, selection: Selection, out: IO, *, parquet: bool = False) -> int:
    """Write the format's rows to ``out`` (binary, for Parquet and for JSON Lines); return how many."""
    rows = format_rows(name)(session, selection)
    return write_parquet(rows, out) if parquet else write_jsonl(rows, out)
