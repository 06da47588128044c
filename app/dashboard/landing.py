"""The landing page at /: where to go from here (the dashboard, the setup while Tandem is not
registered, the API reference)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.dashboard.render import page
from tandem.infra import app_registration

router = APIRouter()


@router.get("/", include_in_schema=False)
def landing(request: Request):
    registered = app_registration.is_registered(request.app.state.settings)
    return page(request, "landing.html", None, title="Tandem", registered=registered)
