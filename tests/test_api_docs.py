"""The API reference at /api/docs: served by Tandem itself, whole, with nothing fetched elsewhere."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from app.main import create_app


class References(HTMLParser):
    """Every tag and every address the page refers to."""

    def __init__(self):
        super().__init__()
        self.tags: set[str] = set()
        self.addresses: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.addresses += [value for name, value in attrs if name in ("src", "href", "action", "srcset") and value]


@pytest.fixture
def page(services):
    with TestClient(create_app(services)) as client:
        yield client.get("/api/docs")


def test_the_reference_lists_every_api_route(page, services):
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    with TestClient(create_app(services)) as client:
        paths = client.get("/api/openapi.json").json()["paths"]
    for path in paths:
        if path.startswith("/api/"):
            assert f"<code>{path}</code>" in page.text, path


def test_the_reference_loads_nothing_from_elsewhere(page):
    references = References()
    references.feed(page.text)
    assert not references.tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert all(not urlsplit(address).netloc and address.startswith(("/", "#")) for address in references.addresses)
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
