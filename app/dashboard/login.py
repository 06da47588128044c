"""Sign in with GitHub (the App's user authorization), and sign out."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from app.dashboard import access
from app.dashboard.access import Role, Viewer
from app.dashboard.render import page
from tandem.domain.dashboard import github_login
from tandem.infra.errors import ServiceUnavailable, TandemError

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/login")
def login_page(request: Request):
    settings = request.app.state.settings
    return page(request, "login.html", None, title="Sign in", configured=github_login.configured(settings))


@router.get("/login/github")
def to_github(request: Request):
    settings = request.app.state.settings
    if not github_login.configured(settings):
        return RedirectResponse("/dashboard/login", status_code=303)
    state = secrets.token_urlsafe(24)
    request.session["oauth_state"] = state
    return RedirectResponse(github_login.authorize_url(settings, state), status_code=303)


@router.get("/login/callback")
def callback(request: Request, code: str = "", state: str = ""):
    expected = request.session.pop("oauth_state", None)
    if not code or not expected or not secrets.compare_digest(expected, state):
        return page(
            request,
            "message.html",
            None,
            status_code=400,
            title="Sign-in refused",
            message="This sign-in was not started in this browser, or was used already. Sign in again.",
        )
    try:
        who = github_login.sign_in(request.app.state.services, code)
    except ServiceUnavailable as exc:
        return page(request, "message.html", None, status_code=502, title="Sign-in failed", message=str(exc))
    except TandemError as exc:
        return page(request, "message.html", None, status_code=400, title="Sign-in refused", message=str(exc))
    if who.team is None:
        access.start_session(request, who.login, who.user_id, Role.RATER, None)
        log.info("dashboard: %s signed in as a rater", who.login)
        return RedirectResponse(f"/dashboard/raters/{who.login}", status_code=303)
    access.start_session(request, who.login, who.user_id, Role.RESEARCH, who.team)
    log.info("dashboard: %s signed in for team %s", who.login, who.team)
    return RedirectResponse("/dashboard/", status_code=303)


@router.post("/logout")
def logout(request: Request, viewer: Annotated[Viewer, Depends(access.viewer)], csrf: Annotated[str, Form()] = ""):
    access.check_csrf(viewer, csrf)
    request.session.clear()
    return RedirectResponse("/", status_code=303)
