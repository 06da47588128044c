"""The operator's browser in the first-run setup, scripted: the sandbox registers Tandem's GitHub
App through the same manifest flow a person follows on github.com (`tandem setup`'s one-time link,
Tandem's setup page, GitHub's new-app page, the callback), so that flow is what it exercises."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx

from tandem.infra.errors import TandemError
from tandem.sandbox.processes import run_tandem


class Forms(HTMLParser):
    """The forms of a page: action, method and the fields a browser would submit."""

    def __init__(self, page: str):
        super().__init__()
        self.forms: list[dict] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "method": attrs.get("method"), "fields": {}})
        elif tag == "input" and self.forms and attrs.get("name"):
            if attrs.get("type") == "radio" and "checked" not in attrs:
                return
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value", "")


def _only_form(response: httpx.Response, step: str) -> dict:
    if response.status_code != 200:
        raise TandemError(f"setup, {step}: HTTP {response.status_code}: {response.text[:300]}")
    forms = Forms(response.text).forms
    if len(forms) != 1:
        raise TandemError(f"setup, {step}: expected one form, found {len(forms)}")
    return forms[0]


def register_app(env_file: Path, tandem_url: str, organization: str) -> None:
    """Register the app for `organization` from app.yml; Tandem writes its credentials into
    `env_file` (and the key beside it)."""
    printed = run_tandem(env_file, "setup")
    link = re.search(r"(http\S+/setup\?key=\S+)", printed)
    if link is None:
        raise TandemError(f"`tandem setup` printed no link: {printed.strip()}")
    own_origin = {"Origin": tandem_url}
    with httpx.Client(timeout=30) as browser:
        opened = browser.get(link.group(1), follow_redirects=True)
        _only_form(opened, "opening the link")
        page = browser.post(
            f"{tandem_url}/setup/register",
            headers=own_origin,
            data={"owner": "organization", "organization": organization},
        )
        to_github = _only_form(page, "sending the manifest")
        # GitHub's new-app page (no confirmation step on the sandbox) redirects back with a code.
        github = browser.post(to_github["action"], data=to_github["fields"])
        if github.status_code != 302:
            raise TandemError(f"setup, GitHub's new-app page: HTTP {github.status_code}: {github.text[:300]}")
        callback = _only_form(browser.get(github.headers["location"]), "GitHub's callback")
        done = browser.post(f"{tandem_url}{callback['action']}", headers=own_origin, data=callback["fields"])
        if done.status_code != 200 or "Registered" not in done.text:
            raise TandemError(f"setup, completing the registration: HTTP {done.status_code}: {done.text[:300]}")
