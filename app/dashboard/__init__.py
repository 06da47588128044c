"""The web dashboard, served by `tandem serve` under /dashboard (and the landing page at /).

Server-rendered HTML (Jinja2 templates and a stylesheet shipped in this package, no client
framework, no CDN), plots drawn as SVG on the server (plots.py says why). One module per page;
who may see what is in access.py. The dashboard is its own ASGI app, mounted at /dashboard, so
its session cookie and its error pages concern its routes only.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from app.dashboard import access, data, leaderboard, login, overview, raters, tasks
from app.dashboard.render import page
from tandem.infra.services import Services

STATIC = Path(__file__).parent / "static"


def create(services: Services) -> FastAPI:
    dashboard = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    dashboard.state.services = services
    dashboard.state.settings = services.settings
    dashboard.add_middleware(
        SessionMiddleware,
        secret_key=access.session_key(services.settings),
        session_cookie=access.SESSION_COOKIE,
        max_age=access.SESSION_SECONDS,
        path="/dashboard",
        same_site="lax",
        https_only=urlsplit(services.settings.public_url).scheme == "https",
    )
    dashboard.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (login, overview, tasks, leaderboard, raters, data):
        dashboard.include_router(module.router)

    @dashboard.exception_handler(access.SignInRequired)
    async def sign_in_first(request: Request, exc: access.SignInRequired):
        return RedirectResponse("/dashboard/login", status_code=303)

    @dashboard.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException):
        return page(
            request,
            "message.html",
            None,
            status_code=exc.status_code,
            headers=exc.headers,
            title=f"Error {exc.status_code}",
            message=exc.detail,
        )

    return dashboard
