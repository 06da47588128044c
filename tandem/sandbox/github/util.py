"""Small helpers: timestamps, node ids, tokens, GUIDs, URL segments, pagination links."""

from __future__ import annotations

import base64
import secrets
import string
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

_ALNUM = string.ascii_letters + string.digits


def iso(ts: float | None = None) -> str:
    """GitHub's timestamp format: ``2026-03-10T12:34:56Z`` (UTC, whole seconds)."""
    if ts is None:
        ts = time.time()
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def node_id(kind: str, ident: int) -> str:
    """A legacy-format global node id: base64 of ``0<len>:<Type><id>``, as in
    ``MDQ6VXNlcjE=`` (User 1). Opaque to clients, stable per object."""
    raw = f"0{len(kind)}:{kind}{ident}"
    return base64.b64encode(raw.encode()).decode()


def installation_token() -> str:
    """``ghs_`` + 36 alphanumerics, the shape of a GitHub App installation token."""
    return "ghs_" + "".join(secrets.choice(_ALNUM) for _ in range(36))


def random_alnum(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def random_hex(n: int) -> str:
    return secrets.token_hex((n + 1) // 2)[:n]


def guid() -> str:
    return str(uuid.uuid4())


def q(segment: str) -> str:
    """Quote one URL path segment (``tandem[bot]`` -> ``tandem%5Bbot%5D``)."""
    return quote(segment, safe="")


def link_header(base: str, path: str, query: dict, page: int, per_page: int, total: int) -> str | None:
    """RFC 5988 ``Link`` header for page-numbered lists, GitHub-style."""
    last = max(1, -(-total // per_page))
    links = []

    def url(p: int) -> str:
        q = dict(query)
        q["per_page"] = str(per_page)
        q["page"] = str(p)
        return f"<{base}{path}?{urlencode(q)}>"

    if page > 1:
        links.append(f'{url(page - 1)}; rel="prev"')
    if page < last:
        links.append(f'{url(page + 1)}; rel="next"')
        links.append(f'{url(last)}; rel="last"')
    if page > 1:
        links.append(f'{url(1)}; rel="first"')
    return ", ".join(links) or None
