"""The job that computes the dashboard's figures afresh (tandem.domain.dashboard.report), queued by a
page that found the data changed since they were last computed."""

from __future__ import annotations

import logging
import time
from typing import Any

from tandem.domain.dashboard import report
from tandem.infra import queue, services
from workers.jobs import runs_on

log = logging.getLogger(__name__)


@runs_on(queue.DASHBOARD)
def compute_figures(*, kind: str, team: str | None, filters: dict[str, Any]) -> str:
    started = time.perf_counter()
    if not report.compute(services.current(), report.Figures(kind, team, filters)):
        return "kept already"
    seconds = time.perf_counter() - started
    log.info("dashboard %s of team %s computed in %.1f s", kind, team, seconds)
    return f"computed in {seconds:.1f} s"
