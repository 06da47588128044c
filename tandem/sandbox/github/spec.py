"""GitHub's OpenAPI description, loaded for serving.

The emulator does not hand-write response bodies: each handler returns the
values it knows, and ``render.py`` completes them from the response schema
found here. This module

* loads ``openapi.json.gz`` (written by ``make_spec.py``) once per process,
* builds one variant per supported REST API version: the file describes
  2022-11-28 and marks later changes with ``x-github-breaking-changes``; the
  2026-03-10 variant applies those patches (JSON merge patches or JSON Patch
  lists) the way GitHub's versioned descriptions are built,
* resolves ``$ref`` into a linked object graph (cycles allowed), and
* compiles the path templates into a router that maps a request to its
  operation and path parameters.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
import threading
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import unquote

# Package data, read through importlib.resources so that it works from a wheel as from a clone.
SPEC_FILE = "openapi.json.gz"

DEFAULT_VERSION = "2022-11-28"  # what GitHub serves when no version is asked for
VERSIONS = ("2022-11-28", "2026-03-10")
HTTP_METHODS = ("get", "put", "post", "delete", "patch")


# --------------------------------------------------------------------------- patches


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: ``null`` deletes, objects merge, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_patch(target.get(key), value)
    return target


def _json_patch(target: dict, ops: list[dict]) -> None:
    """RFC 6902 JSON Patch, the subset GitHub's annotations use (add/remove/replace)."""
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = target
        try:
            for part in parts[:-1]:
                parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        except (KeyError, IndexError):
            continue  # the patched node is not in this (pruned) document
        last = parts[-1]
        kind = op["op"]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if kind == "remove" and index < len(parent):
                del parent[index]
            elif kind == "add":
                parent.insert(index, copy.deepcopy(op["value"]))
            elif kind == "replace" and index < len(parent):
                parent[index] = copy.deepcopy(op["value"])
        else:
            if kind == "remove":
                parent.pop(last, None)
            elif kind in ("add", "replace"):
                parent[last] = copy.deepcopy(op["value"])


def apply_breaking_changes(node: Any, version: str) -> Any:
    """Apply, in place and bottom-up, every ``x-github-breaking-changes`` entry
    whose version is at or before ``version``; drop the annotations."""
    if isinstance(node, dict):
        for key in list(node):
            if key != "x-github-breaking-changes":
                node[key] = apply_breaking_changes(node[key], version)
        changes = node.pop("x-github-breaking-changes", None) or []
        for change in changes:
            if change.get("version", "9999") > version:
                continue
            patch = change.get("patch")
            if isinstance(patch, list):
                _json_patch(node, patch)
            elif isinstance(patch, dict):
                node = _merge_patch(node, patch)
        return node
    if isinstance(node, list):
        return [apply_breaking_changes(v, version) for v in node]
    return node


def _resolve_refs(doc: dict) -> dict:
    """Replace every ``{"$ref": "#/..."}`` with the object it names (shared, so
    recursive schemas become cycles). Siblings of ``$ref`` are ignored, as
    OpenAPI 3.0 says."""
    cache: dict[str, Any] = {}

    def lookup(ref: str) -> Any:
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                if ref not in cache:
                    target = lookup(ref)
                    cache[ref] = target
                    walk(target)
                return cache[ref]
            for key, value in node.items():
                node[key] = walk(value)
            return node
        if isinstance(node, list):
            for i, value in enumerate(node):
                node[i] = walk(value)
        return node

    walk(doc)
    return doc


# --------------------------------------------------------------------------- routing


@dataclass
class Operation:
    operation_id: str
    method: str  # upper case
    path: str  # template, e.g. /repos/{owner}/{repo}
    op: dict  # the resolved operation object
    int_params: frozenset[str]
    docs_url: str

    def response_schema(self, status: int) -> dict | None:
        """The JSON schema of the response body for ``status`` (None: no body)."""
        response = self.op.get("responses", {}).get(str(status))
        if not response:
            return None
        return response.get("content", {}).get("application/json", {}).get("schema")

    def request_schema(self) -> dict | None:
        body = self.op.get("requestBody") or {}
        return body.get("content", {}).get("application/json", {}).get("schema")

    def has_status(self, status: int) -> bool:
        return str(status) in self.op.get("responses", {})


@dataclass
class _Route:
    regex: re.Pattern
    literal_segments: int
    params: list[str]
    operations: dict[str, Operation] = field(default_factory=dict)


class Spec:
    """One API version of the description: schemas plus a router."""

    def __init__(self, doc: dict, version: str):
        self.version = version
        self.doc = doc
        self.schemas: dict[str, dict] = doc["components"]["schemas"]
        self.operations: dict[str, Operation] = {}
        self.webhooks: dict[str, dict] = {}
        routes: list[_Route] = []
        for template, item in doc["paths"].items():
            route = self._compile(template, item)
            routes.append(route)
            for method in HTTP_METHODS:
                if method not in item:
                    continue
                op = item[method]
                params = [p for p in op.get("parameters", []) + item.get("parameters", [])]
                int_params = frozenset(
                    p["name"] for p in params if p.get("in") == "path" and p.get("schema", {}).get("type") == "integer"
                )
                operation = Operation(
                    operation_id=op["operationId"],
                    method=method.upper(),
                    path=template,
                    op=op,
                    int_params=int_params,
                    docs_url=op.get("externalDocs", {}).get("url", "https://docs.github.com/rest"),
                )
                route.operations[method.upper()] = operation
                self.operations[operation.operation_id] = operation
        # Most literal segments first, so /pulls/comments/{id} wins over /pulls/{n}.
        routes.sort(key=lambda r: -r.literal_segments)
        self._routes = routes
        for name, item in doc.get("x-webhooks", {}).items():
            schema = item["post"]["requestBody"]["content"]["application/json"]["schema"]
            self.webhooks[name] = schema

    @staticmethod
    def _compile(template: str, item: dict) -> _Route:
        multi = set()
        for method in HTTP_METHODS:
            for p in item.get(method, {}).get("parameters", []):
                if p.get("in") == "path" and p.get("x-multi-segment"):
                    multi.add(p["name"])
        params: list[str] = []
        literal = 0
        pattern = ""
        for segment in template.strip("/").split("/"):
            pattern += "/"
            m = re.fullmatch(r"\{(\w+)\}", segment)
            if m:
                name = m.group(1)
                params.append(name)
                # Multi-segment parameters (a file path, a ref like heads/a/b) may hold
                # slashes; an empty contents path means the repository root.
                pattern += f"(?P<{name}>.*)" if name in multi else f"(?P<{name}>[^/]+)"
            else:
                literal += 1
                pattern += re.escape(segment)
        return _Route(re.compile(pattern + "/?$"), literal, params)

    def match(self, method: str, raw_path: str) -> tuple[Operation | None, dict[str, Any], bool]:
        """Find the operation for ``method raw_path``.

        Returns (operation, path params, path_known). Parameters are
        percent-decoded one by one from the raw path, so an encoded ``/`` in a
        label name stays part of the name.
        """
        path_known = False
        for route in self._routes:
            m = route.regex.match(raw_path)
            if not m:
                continue
            operation = route.operations.get(method)
            params: dict[str, Any] = {}
            ok = True
            for name, value in m.groupdict().items():
                value = unquote(value)
                if operation and name in operation.int_params:
                    if not value.isdigit():
                        ok = False
                        break
                    params[name] = int(value)
                else:
                    params[name] = value
            if not ok:
                continue
            path_known = True
            if operation is None:
                continue
            return operation, params, True
        return None, {}, path_known

    def webhook_schema(self, event: str, action: str | None) -> dict | None:
        key = event.replace("_", "-") + (("-" + action.replace("_", "-")) if action else "")
        return self.webhooks.get(key)


_lock = threading.Lock()
_specs: dict[str, Spec] = {}
_raw: dict[str, dict] = {}


def _load_all() -> None:
    with _lock:
        if _specs:
            return
        raw = json.loads(gzip.decompress(resources.files(__package__).joinpath(SPEC_FILE).read_bytes()))
        for v in VERSIONS:
            _raw[v] = apply_breaking_changes(copy.deepcopy(raw), v)
            _specs[v] = Spec(_resolve_refs(copy.deepcopy(_raw[v])), v)


def load(version: str = DEFAULT_VERSION) -> Spec:
    """The (process-wide, read-only) spec for ``version``, ``$ref``s resolved."""
    _load_all()
    return _specs[version]


def load_raw(version: str = DEFAULT_VERSION) -> dict:
    """The description for ``version`` with ``$ref``s kept (for jsonschema). Read-only."""
    _load_all()
    return _raw[version]
