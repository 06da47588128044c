"""GET /setup: register the GitHub App from app.yml. Gone (404) once credentials exist."""

from __future__ import annotations

import html
import ipaddress
import json

import logging

import redis
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from tandem import app_registration
from tandem.errors import ServiceUnavailable, TandemError

log = logging.getLogger(__name__)

router = APIRouter()

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tandem setup</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}}
fieldset{{margin:1rem 0}}button{{font-size:1rem;padding:.4rem 1rem}}</style></head>
<body><h1>Tandem setup</h1>{body}</body></html>"""


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(body=body), status_code=status)


def _settings(request: Request):
    settings = request.app.state.settings
    if app_registration.is_registered(settings):
        # Nobody may register a second app over a running one.
        raise HTTPException(status_code=404)
    if not _from_this_machine(request):
        # Until it has credentials, whoever registers the app owns its webhook secret: only
        # the person at the server (or at an SSH tunnel to it) may.
        raise HTTPException(status_code=404)
    return settings


def _from_this_machine(request: Request) -> bool:
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:  # not an address at all
        return False


def _redis_down(exc: redis.RedisError) -> HTMLResponse:
    log.error("setup: Redis unavailable (%s)", type(exc).__name__)
    return _page("<p>Redis cannot be reached, and the setup needs it: start it, then reload this page.</p>", 503)


@router.get("/setup", response_class=HTMLResponse)
async def setup_page(request: Request) -> HTMLResponse:
    _settings(request)
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


@router.post("/setup/register", response_class=HTMLResponse)
async def register(request: Request) -> HTMLResponse:
    settings = _settings(request)
    form = await request.form()
    organization = str(form.get("organization") or "").strip() if form.get("owner") == "organization" else None
    try:
        target = app_registration.registration_url(settings, organization)
    except TandemError as exc:
        return _page(f"<p>{html.escape(str(exc))}. <a href='/setup'>Back</a></p>", status=400)
    try:
        state = await run_in_threadpool(app_registration.new_state, request.app.state.services.redis)
    except redis.RedisError as exc:
        return _redis_down(exc)
    manifest = json.dumps(app_registration.manifest(settings))
    # GitHub takes the manifest as a form post from the browser; this page submits itself.
    return _page(
        f"""<form id="register" method="post" action="{html.escape(target)}?state={html.escape(state)}">
<input type="hidden" name="manifest" value="{html.escape(manifest)}">
<input type="hidden" name="state" value="{html.escape(state)}">
<p>Sending the manifest to GitHub… <button type="submit">Continue</button></p></form>
<script>document.getElementById("register").submit()</script>"""
    )


@router.get("/setup/callback", response_class=HTMLResponse)
async def callback(request: Request, code: str = "", state: str = "") -> HTMLResponse:
    settings = _settings(request)
    connection = request.app.state.services.redis
    try:
        if not code or not await run_in_threadpool(app_registration.consume_state, connection, state):
            return _page(
                "<p>This link is not from a registration started here (or it was used already). "
                "<a href='/setup'>Start again</a>.</p>",
                400,
            )
        app = await run_in_threadpool(app_registration.complete, settings, code, connection)
    except redis.RedisError as exc:
        return _redis_down(exc)
    except app_registration.AlreadyRegistered as exc:
        return _page(f"<p>{html.escape(str(exc))}.</p>", status=409)
    except ServiceUnavailable as exc:
        # The code may still be good: the same link works again once GitHub answers.
        await run_in_threadpool(app_registration.restore_state, connection, state)
        return _page(f"<p>{html.escape(str(exc))}.</p>", status=502)
    except TandemError as exc:
        return _page(f"<p>{html.escape(str(exc))}.</p>", status=400)
    install_url = f"{app.get('html_url', settings.web_url)}/installations/new"
    return _page(
        f"""<p>Registered <strong>{html.escape(app.get("name", ""))}</strong> (app id {int(app["id"])}).
Its id, private key and webhook secret are in <code>{html.escape(str(settings.env_file))}</code>.</p>
<ol><li>Restart <code>tandem serve</code> and <code>tandem worker</code> so they load them.</li>
<li><a href="{html.escape(install_url)}">Install the app</a> on the organization that holds your mirror
repositories, and mark each mirror with <code>mirror: true</code> in <code>.github/tandem.yml</code>.</li>
<li>Run <code>tandem doctor</code> to check everything.</li></ol>"""
    )
