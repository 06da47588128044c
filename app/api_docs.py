"""GET /api/docs: the API reference as one HTML page rendered here from the OpenAPI description.

FastAPI's /docs loads Swagger UI from a CDN, so it is blank offline and asks a third party for
every page view; this page needs nothing but this server (no script, no external link).
"""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter()

PATH = "/api/docs"
_STYLE = """body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
code,pre{font:13px ui-monospace,monospace;background:#f6f8fa;border-radius:4px;padding:.1rem .3rem}
pre{padding:.6rem;overflow:auto}.op{border-top:1px solid #d0d7de;padding:.6rem 0}
.method{font-weight:bold;text-transform:uppercase;margin-right:.5rem}table{border-collapse:collapse}
td,th{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left;vertical-align:top}"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _type(schema: dict) -> str:
    """A schema in a few words: a reference's name, an array's items, a union's members."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{_e(name)}">{_e(name)}</a>'
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    for union in ("anyOf", "oneOf", "allOf"):
        if union in schema:
            return " | ".join(_type(member) for member in schema[union])
    if "enum" in schema:
        return " | ".join(f"<code>{_e(json.dumps(value))}</code>" for value in schema["enum"])
    if "const" in schema:
        return f"<code>{_e(json.dumps(schema['const']))}</code>"
    return _e(schema.get("type", "any"))


def _parameters(parameters: list[dict]) -> str:
    if not parameters:
        return ""
    rows = "".join(
        f"<tr><td><code>{_e(p['name'])}</code></td><td>{_e(p['in'])}</td><td>{_type(p.get('schema', {}))}</td>"
        f"<td>{'required' if p.get('required') else ''}</td><td>{_e(p.get('description', ''))}</td></tr>"
        for p in parameters
    )
    return f"<table><tr><th>parameter</th><th>in</th><th>type</th><th></th><th></th></tr>{rows}</table>"


def _operation(path: str, method: str, operation: dict) -> str:
    parts = [f'<div class="op"><p><span class="method">{_e(method)}</span><code>{_e(path)}</code></p>']
    if operation.get("description") or operation.get("summary"):
        parts.append(f"<p>{_e(operation.get('description') or operation['summary'])}</p>")
    parts.append(_parameters(operation.get("parameters", [])))
    body = operation.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        parts.append(f"<p>body ({_e(media)}): {_type(content.get('schema', {}))}</p>")
    answers = ", ".join(
        f"{_e(code)} {_e(answer.get('description', ''))}" for code, answer in operation.get("responses", {}).items()
    )
    parts.append(f"<p>answers: {answers}</p></div>")
    return "".join(parts)


def _schema(name: str, schema: dict) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(field)}</code></td><td>{_type(spec)}</td>"
        f"<td>{'required' if field in schema.get('required', ()) else ''}</td></tr>"
        for field, spec in schema.get("properties", {}).items()
    )
    table = f"<table><tr><th>field</th><th>type</th><th></th></tr>{rows}</table>" if rows else f"<p>{_type(schema)}</p>"
    return f'<h3 id="schema-{_e(name)}">{_e(name)}</h3>{table}'


def render(spec: dict) -> str:
    operations = "".join(
        _operation(path, method, operation)
        for path, methods in spec.get("paths", {}).items()
        for method, operation in methods.items()
    )
    schemas = "".join(_schema(name, schema) for name, schema in spec.get("components", {}).get("schemas", {}).items())
    title = _e(spec.get("info", {}).get("title", "API"))
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} API</title>'
        f"<style>{_STYLE}</style></head><body><h1>{title} API</h1>"
        "<p>Every route needs <code>Authorization: Bearer TOKEN</code> (<code>tandem token create</code>) with the "
        'route\'s scope. The machine-readable description is <a href="/api/openapi.json">/api/openapi.json</a>.</p>'
        f"<h2>Routes</h2>{operations}<h2>Schemas</h2>{schemas}</body></html>"
    )


@router.get(PATH, include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    # The browser enforces what the page promises: nothing loads from anywhere, not even here.
    return HTMLResponse(
        render(request.app.openapi()),
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )
