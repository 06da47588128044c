"""Render a JSON body from an OpenAPI schema and the values the emulator knows.

Handlers and webhook builders produce *values*: plain dicts with everything the
emulator's state says about a resource (``views/``). The renderer walks the
response schema alongside them:

* a property the schema lists and the values hold is rendered recursively;
* a *required* property the values lack gets a type-correct default
  (``null`` where nullable, the first enum member, a timestamp for
  ``date-time``, a URL for ``uri``, ``0``/``false``/``""``/``[]``, or an
  object of its own required properties);
* a value the schema does not list is dropped, so a field an API version
  removed (``merge_commit_sha`` in 2026-03-10) is not sent under it;
* ``allOf`` members are merged, ``oneOf``/``anyOf`` pick the member that fits
  the value (type, ``enum`` matches, known properties), ``nullable`` allows
  ``None``.

Every default filled in for a required property is noted in
``Renderer.defaults_used`` (path -> count) so tests can see where state is
thin, and every value that does not fit its schema in ``Renderer.problems``.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

MISSING: Any = object()


class Fit:
    """A value with alternatives for schemas that disagree on a property's type.

    GitHub's schemas give some properties different shapes in different places
    (a repository's ``organization`` is a user object in REST responses and a
    login string in some webhook bodies). A view passes ``Fit(obj, text)``;
    the renderer uses the first alternative the schema accepts, and leaves the
    property out if none fits and it is optional.
    """

    __slots__ = ("options",)

    def __init__(self, *options: Any):
        self.options = options


def unwrap(value: Any) -> Any:
    """``value`` with each Fit as its first alternative: for bodies no schema describes."""
    if isinstance(value, Fit):
        return unwrap(value.options[0])
    if isinstance(value, dict):
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [unwrap(item) for item in value]
    return value


_SCALAR_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
}


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


class Renderer:
    def __init__(self, base_url: str, now: Callable[[], str]):
        self.base_url = base_url.rstrip("/")
        self.now = now
        self._merged: dict[int, dict] = {}
        self._merged_lock = threading.Lock()
        self.defaults_used: Counter[str] = Counter()
        self.problems: list[str] = []  # capped: see _problem

    def _problem(self, text: str) -> None:
        if len(self.problems) < 1000:
            self.problems.append(text)

    # ------------------------------------------------------------------ schema helpers

    def _merge_all_of(self, schema: dict) -> dict:
        """Flatten ``allOf`` into one object schema (cached by identity; the
        spec graph is immutable once loaded)."""
        key = id(schema)
        merged = self._merged.get(key)
        if merged is not None:
            return merged
        out: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        properties: dict[str, Any] = dict(out.get("properties", {}))
        required: list[str] = list(out.get("required", []))
        nullable = []
        for member in schema["allOf"]:
            if "allOf" in member:
                member = self._merge_all_of(member)
            for name, sub in member.get("properties", {}).items():
                if name in properties and properties[name] is not sub:
                    properties[name] = {"allOf": [properties[name], sub]}
                else:
                    properties[name] = sub
            required += [r for r in member.get("required", []) if r not in required]
            nullable.append(bool(member.get("nullable")))
            for k in ("type", "additionalProperties", "enum", "format", "oneOf", "anyOf"):
                if k in member and k not in out:
                    out[k] = member[k]
        if properties:
            out["properties"] = properties
            out.setdefault("type", "object")
        out["required"] = required
        if nullable and all(nullable):
            out["nullable"] = True
        with self._merged_lock:
            self._merged[key] = out
        return out

    @staticmethod
    def _allows_null(schema: dict) -> bool:
        if schema.get("nullable") or schema.get("type") == "null":
            return True
        enum = schema.get("enum")
        return bool(enum and None in enum)

    def _score(self, schema: dict, value: Any) -> float:
        """How well ``value`` fits ``schema`` (negative: it does not)."""
        if "allOf" in schema:
            schema = self._merge_all_of(schema)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                return max((self._score(m, value) for m in schema[key]), default=-1)
        if value is None:
            return 1 if self._allows_null(schema) else -1
        vtype = _type_of(value)
        stype = schema.get("type")
        if stype is None:
            stype = "object" if "properties" in schema else None
        if stype is not None:
            if stype == "number" and vtype == "integer":
                pass
            elif stype != vtype:
                return -1
        enum = schema.get("enum")
        if enum is not None and value not in enum:
            return -1
        if vtype != "object":
            return 1
        score = 1.0
        props = schema.get("properties", {})
        for name, sub in props.items():
            if name in value:
                score += 1
                sub_enum = sub.get("enum") if isinstance(sub, dict) else None
                if sub_enum is not None:
                    if value[name] in sub_enum:
                        score += 5
                    else:
                        return -1
        for name in schema.get("required", []):
            if name not in value:
                score -= 0.5
        return score

    def _pick(self, members: list[dict], value: Any) -> dict:
        if value is MISSING:
            for m in members:
                if self._allows_null(m):
                    return m
            return members[0]
        best, best_score = members[0], float("-inf")
        for m in members:
            s = self._score(m, value)
            if s > best_score:
                best, best_score = m, s
        return best

    # ------------------------------------------------------------------ defaults

    def _default(self, schema: dict, name: str, path: str) -> Any:
        self.defaults_used[path] += 1
        if self._allows_null(schema):
            return None
        enum = schema.get("enum")
        if enum:
            return next(e for e in enum if e is not None)
        stype = schema.get("type") or ("object" if "properties" in schema else None)
        if stype == "string":
            fmt = schema.get("format")
            if fmt == "date-time":
                return self.now()
            if fmt in ("uri", "uri-template") or name.endswith("_url") or name == "url":
                return f"{self.base_url}/{name.removesuffix('_url') or 'url'}"
            if fmt == "email":
                return "noreply@example.com"
            return ""
        if stype in ("integer", "number"):
            return 0
        if stype == "boolean":
            return False
        if stype == "array":
            return []
        if stype == "object":
            return self.render(schema, {}, path)
        return None

    # ------------------------------------------------------------------ rendering

    def render(self, schema: dict | None, value: Any, path: str = "$") -> Any:
        if schema is None:
            return value
        if "allOf" in schema:
            schema = self._merge_all_of(schema)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                if value is None and self._allows_null(schema):
                    return None
                return self.render(self._pick(schema[key], value), value, path)
        if value is MISSING:
            return self._default(schema, path.rsplit(".", 1)[-1], path)
        if value is None:
            if not self._allows_null(schema) and schema:
                self._problem(f"{path}: null where the schema does not allow it")
            return None
        stype = schema.get("type") or ("object" if "properties" in schema else None)
        if stype == "object":
            if not isinstance(value, dict):
                self._problem(f"{path}: expected object, got {_type_of(value)}")
                return value
            props = schema.get("properties")
            addl = schema.get("additionalProperties")
            if not props:
                if isinstance(addl, dict):
                    return {k: self.render(addl, v, f"{path}.{k}") for k, v in value.items()}
                return dict(value)
            out: dict[str, Any] = {}
            required = schema.get("required", ())
            for name, sub in props.items():
                if name in value:
                    item = value[name]
                    if isinstance(item, Fit):
                        item = next((o for o in item.options if self._score(sub, o) >= 0), MISSING)
                        if item is MISSING and name not in required:
                            continue
                    elif item is None and name not in required and self._score(sub, None) < 0:
                        # GitHub leaves out an optional field it may not send as null
                        # (e.g. ``merged_at`` of an issue's ``pull_request`` in 2026-03-10).
                        continue
                    out[name] = self.render(sub, item, f"{path}.{name}")
                elif name in required:
                    out[name] = self.render(sub, MISSING, f"{path}.{name}")
            if addl:
                for k, v in value.items():
                    if k not in props:
                        out[k] = self.render(addl, v, f"{path}.{k}") if isinstance(addl, dict) else v
            return out
        if stype == "array":
            if not isinstance(value, (list, tuple)):
                self._problem(f"{path}: expected array, got {_type_of(value)}")
                return value
            items = schema.get("items") or {}
            return [self.render(items, v, f"{path}[]") for v in value]
        return self._scalar(schema, stype, value, path)

    def _scalar(self, schema: dict, stype: str | None, value: Any, path: str) -> Any:
        if stype == "integer" and isinstance(value, str) and schema.get("format") != "date-time":
            # A few webhook schemas give timestamps as Unix seconds.
            with contextlib.suppress(ValueError):
                value = int(datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=UTC).timestamp())
        if stype == "number" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if (stype in _SCALAR_TYPES and not isinstance(value, _SCALAR_TYPES[stype])) or (
            stype in ("integer", "number") and isinstance(value, bool)
        ):
            self._problem(f"{path}: expected {stype}, got {_type_of(value)} {value!r:.40}")
        enum = schema.get("enum")
        if enum is not None and value not in enum:
            self._problem(f"{path}: {value!r} not in {enum}")
        return value
