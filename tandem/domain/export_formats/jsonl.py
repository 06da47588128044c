"""The raw export (tandem.domain.export): every object, the full history, in the selection's team,
round and metadata; with the ``blind`` and ``gold`` flags every format carries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from tandem.domain.export_formats.selection import Selection
from tandem.domain.export_formats.source import items


def rows(session: Session, selection: Selection) -> Iterator[dict[str, Any]]:
    for item in items(session, selection, context=False):
        yield item.row
