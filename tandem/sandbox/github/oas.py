"""OpenAPI 3.0 schema -> JSON Schema (draft 4), for validating with ``jsonschema``.

OpenAPI 3.0 schemas are "almost" JSON Schema: ``nullable: true`` means the
value may also be ``null``, and a few keywords (``discriminator``,
``example``, ``readOnly``, ``x-*``) are not JSON Schema. The conversion is
structural (it knows which keywords hold schemas), so a *property* called
``example`` or ``nullable`` is kept.

Used by the server to validate request bodies (GitHub answers 422 "Invalid
request") and by the tests to validate every response body.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import jsonschema
from referencing import Registry
from referencing.jsonschema import DRAFT4

SPEC_URI = "urn:github-openapi"

_DROP = {
    "discriminator",
    "example",
    "examples",
    "readOnly",
    "writeOnly",
    "xml",
    "externalDocs",
    "deprecated",
    "nullable",
    "description",
    "title",
    "default",
}
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_ONE = ("items", "not", "additionalProperties")


def convert(node):
    """Convert one schema (``$ref``s are rewritten to point into ``SPEC_URI``)."""
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        return {"$ref": SPEC_URI + ref if ref.startswith("#") else ref}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key.startswith("x-"):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: convert(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [convert(sub) for sub in value]
        elif key in _SCHEMA_ONE and isinstance(value, dict):
            out[key] = convert(value)
        else:
            out[key] = value
    if node.get("nullable"):
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return {"anyOf": [{"type": "null"}, out]}
    return out


def convert_document(doc: dict) -> dict:
    """The ``components`` of a whole description, converted (a ``$ref`` target root)."""
    components = {}
    for kind, items in doc.get("components", {}).items():
        if kind == "schemas":
            components[kind] = {name: convert(s) for name, s in items.items()}
        else:
            components[kind] = _convert_container(items)
    return {"components": components}


def _convert_container(node):
    """Convert schemas nested in parameters/responses/headers (``schema`` keys)."""
    if isinstance(node, dict):
        return {k: (convert(v) if k == "schema" else _convert_container(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_convert_container(v) for v in node]
    return node


# ------------------------------------------------------------------ formats

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", value):
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@FORMATS.checks("uri", raises=ValueError)
def _is_uri(value) -> bool:
    if not isinstance(value, str):
        return True
    parsed = urlparse(value)
    if not parsed.scheme:
        raise ValueError(f"not an absolute URI: {value!r}")
    return True


class Validators:
    """Cached draft-4 validators for schemas of one (unresolved) description."""

    def __init__(self, doc: dict):
        root = convert_document(doc)
        self.registry = Registry().with_resource(SPEC_URI, DRAFT4.create_resource(root))
        self._cache: dict[tuple[int, bool], jsonschema.Draft4Validator] = {}

    def validator(self, schema: dict, formats: bool = False) -> jsonschema.Draft4Validator:
        key = (id(schema), formats)
        v = self._cache.get(key)
        if v is None:
            v = jsonschema.Draft4Validator(
                convert(schema), registry=self.registry, format_checker=FORMATS if formats else None
            )
            self._cache[key] = v
        return v
