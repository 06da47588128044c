"""Rendering the dashboard's templates, and what every page shares."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fastapi import Request
from fastapi.templating import Jinja2Templates

from app.dashboard.access import Viewer

# Starlette turns autoescaping on for .html templates: what people wrote is shown, never run.
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _duration(seconds: float | None) -> str:
    """A wait in words a person reads at a glance: 45 s, 12 min, 3.5 h, 2.1 d."""
    if seconds is None:
        return "n/a"
    for limit, unit, size in ((120, "s", 1), (7200, "min", 60), (172800, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.0f} {unit}" if unit != "h" else f"{seconds / size:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _na(value) -> str:
    """A figure the statistics could not give (too few votes, no gold tasks) reads n/a."""
    return "n/a" if value is None else value


def _query(values: dict, **changes) -> str:
    """The page's query string with some parameters changed (None or "" drops one)."""
    merged = {**values, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")}, doseq=True)


templates.env.filters["duration"] = _duration
templates.env.filters["na"] = _na
templates.env.globals["query"] = _query
# A page whose figures are being computed reloads itself this often (a meta refresh: no script).
templates.env.globals["refresh_seconds"] = 3


def page(request: Request, name: str, viewer: Viewer | None, *, status_code: int = 200, headers=None, **context):
    return templates.TemplateResponse(
        request, name, {"viewer": viewer, **context}, status_code=status_code, headers=headers
    )
