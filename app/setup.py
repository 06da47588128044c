"""/setup: register the GitHub App from app.yml. Gone (404) once credentials exist.

Whoever finishes the setup holds the app's webhook secret, so every step checks that it comes
from the operator's browser, and not from a page that browser happens to visit:
- the Host must be TANDEM_PUBLIC_URL's or localhost (a DNS-rebound name is refused);
- the browser holds a setup session, a SameSite=Strict cookie it got by opening the one-time link
  `tandem setup` printed (a connection from loopback proves nothing: local proxies forward);
- each POST carries this server's Origin (no cross-site form);
- GitHub's code is exchanged only with a state issued to that same session.
GitHub's redirect back is a cross-site navigation, on which browsers withhold SameSite=Strict
cookies: the callback page hands the code on with a same-origin POST, which carries them.
"""

from __future__ import annotations

import html
import json
import logging
from urllib.parse import urlsplit

import redis
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tandem.infra import app_registration
from tandem.infra.errors import ServiceUnavailable, TandemError
from tandem.infra.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter()

COOKIE = "tandem_setup"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tandem setup</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}}
fieldset{{margin:1rem 0}}button{{font-size:1rem;padding:.4rem 1rem}}</style></head>
<body><h1>Tandem setup</h1>{body}</body></html>"""

NO_SESSION = (
    "<p>The setup opens only in the browser that opened the one-time link <code>tandem setup</code> "
    "prints. Run it on the server, then open the link it gives (within the hour).</p>"
)


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(body=body), status_code=status)


class _Refused(Exception):
    def __init__(self, page: HTMLResponse):
        self.page = page


def _origin(request: Request, settings: Settings) -> str:
    """The origin the browser reached us at, if setup may happen there: TANDEM_PUBLIC_URL's, or
    localhost on any port (an SSH tunnel). Anything else, such as a DNS-rebound name, is refused."""
    public = urlsplit(settings.public_url)
    host = request.headers.get("host", "").lower()
    if host == public.netloc.lower():
        return f"{public.scheme}://{public.netloc}"
    try:
        name = urlsplit(f"//{host}").hostname
    except ValueError:  # a malformed port
        name = None
    if name in LOOPBACK_NAMES:
        return f"{request.url.scheme}://{host}"
    raise _Refused(
        _page(
            f"<p>The setup answers only at {html.escape(settings.public_url)} (TANDEM_PUBLIC_URL) or on localhost.</p>",
            400,
        )
    )


def _open_setup(request: Request) -> tuple[Settings, str]:
    """Settings and the browser's origin; 404 once registered: nobody may register a second app
    over a running one."""
    settings = request.app.state.settings
    if app_registration.is_registered(settings):
        raise HTTPException(status_code=404)
    return settings, _origin(request, settings)


async def _session(request: Request, origin: str, *, posted: bool) -> str:
    """The browser's setup session; for a POST, also that the form came from our own page."""
    if posted and request.headers.get("origin") != origin:
        raise _Refused(_page("<p>Refused: this form was not sent from Tandem's setup page.</p>", 403))
    session = request.cookies.get(COOKIE)
    if session is None or not await run_in_threadpool(
        app_registration.has_session, request.app.state.services.redis, session
    ):
        raise _Refused(_page(NO_SESSION, 403))
    return session


def _redis_down(exc: redis.RedisError) -> HTMLResponse:
    log.error("setup: Redis unavailable (%s)", type(exc).__name__)
    return _page("<p>Redis cannot be reached, and the setup needs it: start it, then reload this page.</p>", 503)


async def _guarded(request: Request, step) -> Response:
    """Run a setup step with the settings and the browser's origin, answering refusals as pages."""
    try:
        settings, origin = _open_setup(request)
        return await step(settings, origin)
    except _Refused as refusal:
        return refusal.page
    except redis.RedisError as exc:
        return _redis_down(exc)


@router.get("/setup", response_class=HTMLResponse)
async def setup_page(request: Request, key: str = "") -> Response:
    async def step(settings: Settings, origin: str) -> Response:
        if key:
            # Spend the one-time link, and keep its secret out of the address bar and history.
            session = await run_in_threadpool(app_registration.open_session, request.app.state.services.redis, key)
            if session is None:
                return _page(
                    "<p>This setup link was used already or is older than an hour. Run "
                    "<code>tandem setup</code> for a new one.</p>",
                    403,
                )
            response = RedirectResponse("/setup", status_code=303)
            response.set_cookie(
                COOKIE,
                session,
                max_age=app_registration.SESSION_TTL,
                path="/setup",
                httponly=True,
                samesite="strict",
                secure=origin.startswith("https://"),
            )
            return response
        await _session(request, origin, posted=False)
        return _page(
            """<p>Tandem has no GitHub App yet. Register one from <code>app.yml</code>: GitHub will ask
you to confirm, then send you back here.</p>
<form method="post" action="/setup/register">
<fieldset><legend>Register the app for</legend>
<label><input type="radio" name="owner" value="user" checked> my personal account</label><br>
<label><input type="radio" name="owner" value="organization"> the organization
<input name="organization" placeholder="evals-org" pattern="[A-Za-z0-9][A-Za-z0-9-]*"></label>
</fieldset>
<button type="submit">Register on GitHub</button></form>"""
        )

    return await _guarded(request, step)


@router.post("/setup/register", response_class=HTMLResponse)
async def register(request: Request) -> Response:
    async def step(settings: Settings, origin: str) -> Response:
        session = await _session(request, origin, posted=True)
        form = await request.form()
        organization = str(form.get("organization") or "").strip() if form.get("owner") == "organization" else None
        try:
            target = app_registration.registration_url(settings, organization)
        except TandemError as exc:
            return _page(f"<p>{html.escape(str(exc))}. <a href='/setup'>Back</a></p>", status=400)
        state = await run_in_threadpool(app_registration.new_state, request.app.state.services.redis, session)
        manifest = json.dumps(app_registration.manifest(settings, origin))
        # GitHub takes the manifest as a form post from the browser; this page submits itself.
        return _page(
            f"""<form id="register" method="post" action="{html.escape(target)}?state={html.escape(state)}">
<input type="hidden" name="manifest" value="{html.escape(manifest)}">
<input type="hidden" name="state" value="{html.escape(state)}">
<p>Sending the manifest to GitHub… <button type="submit">Continue</button></p></form>
<script>document.getElementById("register").submit()</script>"""
        )

    return await _guarded(request, step)


def _hand_on(code: str, state: str, note: str, status: int = 200, *, now: bool = False) -> HTMLResponse:
    """A form that posts GitHub's code to /setup/complete from our own origin (with the cookie);
    `now` submits it at once."""
    script = '<script>document.getElementById("complete").submit()</script>' if now else ""
    return _page(
        f"""<form id="complete" method="post" action="/setup/complete">
<input type="hidden" name="code" value="{html.escape(code)}">
<input type="hidden" name="state" value="{html.escape(state)}">
<p>{note} <button type="submit">Continue</button></p></form>{script}""",
        status,
    )


@router.get("/setup/callback", response_class=HTMLResponse)
async def callback(request: Request, code: str = "", state: str = "") -> Response:
    """Where GitHub sends the browser back. It exchanges nothing itself (see the module's doc)."""

    async def step(settings: Settings, origin: str) -> Response:
        if not code or not state:
            return _page(
                "<p>This link is not from a registration started here. <a href='/setup'>Start again</a>.</p>", 400
            )
        return _hand_on(code, state, "Finishing the registration…", now=True)

    return await _guarded(request, step)


@router.post("/setup/complete", response_class=HTMLResponse)
async def complete(request: Request) -> Response:
    connection = request.app.state.services.redis

    async def step(settings: Settings, origin: str) -> Response:
        session = await _session(request, origin, posted=True)
        form = await request.form()
        code, state = str(form.get("code") or ""), str(form.get("state") or "")
        if not code or not await run_in_threadpool(app_registration.consume_state, connection, session, state):
            return _page(
                "<p>This link is not from a registration started in this browser (or it was used already). "
                "<a href='/setup'>Start again</a>.</p>",
                400,
            )
        try:
            app = await run_in_threadpool(app_registration.complete, settings, code, connection)
        except app_registration.AlreadyRegistered as exc:
            return _page(f"<p>{html.escape(str(exc))}.</p>", status=409)
        except ServiceUnavailable as exc:
            # The code may still be good: the same form works again once GitHub answers.
            await run_in_threadpool(app_registration.restore_state, connection, session, state)
            return _hand_on(code, state, f"{html.escape(str(exc))}.", 502)
        except TandemError as exc:
            return _page(f"<p>{html.escape(str(exc))}.</p>", status=400)
        await run_in_threadpool(app_registration.close_session, connection, session)
        install_url = f"{app.get('html_url', settings.web_url)}/installations/new"
        done = _page(
            f"""<p>Registered <strong>{html.escape(app.get("name", ""))}</strong> (app id {int(app["id"])}).
Its id and webhook secret are in <code>{html.escape(str(settings.env_file.resolve()))}</code>, its private key in
<code>{html.escape(str(app_registration.private_key_file(settings.env_file).resolve()))}</code>
(readable by its owner only; keep both out of version control).</p>
<ol><li>Restart <code>tandem serve</code> and <code>tandem worker</code> so they load them.</li>
<li><a href="{html.escape(install_url)}">Install the app</a> on the organization that holds your mirror
repositories, and mark each mirror with <code>mirror: true</code> in <code>.github/tandem.yml</code>.</li>
<li>Run <code>tandem doctor</code> to check everything.</li></ol>"""
        )
        done.delete_cookie(COOKIE, path="/setup")
        return done

    return await _guarded(request, step)
