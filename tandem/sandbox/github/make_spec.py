"""Build ``openapi.json.gz``, the emulator's copy of GitHub's REST description.

The emulator renders every response from GitHub's own OpenAPI description, so
it needs the operations it serves and every schema they reference. Those come
from the reference data kept beside the clone (``../shared/github/openapi``):

* every path of ``api.github.com.subset.json`` (the paths Tandem uses, with
  GitHub's own text for the operations octokit's build rewrites), and its
  ``x-webhooks`` (the webhook bodies the emulator sends);
* the few extra paths listed in ``EXTRA_PATHS``, copied from the full
  description ``api.github.com.json``.

Components missing from the subset are copied from the full description, then
anything unreferenced is pruned. ``components/examples`` and media-type
``example(s)`` are dropped: the emulator derives bodies from schemas and state,
never from canned examples, and they are a large share of the file.
``x-github-breaking-changes`` annotations are kept: the emulator applies them
to serve the 2026-03-10 API version (see ``spec.py``).

Run it again after the reference data changes, and commit the result:

    python tandem/sandbox/github/make_spec.py [--shared PATH_TO_shared/github]

The output is deterministic (same input, same bytes).
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# tandem/sandbox/github -> sandbox -> tandem -> <clone> -> its parent holds shared/
DEFAULT_SHARED = HERE.parents[3] / "shared" / "github"
OUT = HERE / "openapi.json.gz"

# Operations the emulator serves that the subset does not carry.
EXTRA_PATHS = [
    "/installation/repositories",
    "/app/installations/{installation_id}/suspended",
    "/users/{username}",
    "/orgs/{org}/teams/{team_slug}/memberships/{username}",
    "/repos/{owner}/{repo}/git/matching-refs/{ref}",
    "/repos/{owner}/{repo}/issues/{issue_number}",
    "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}",
    "/repos/{owner}/{repo}/labels/{name}",
    "/repos/{owner}/{repo}/commits/{ref}/check-runs",
    "/repos/{owner}/{repo}/pulls/{pull_number}/comments",
    "/repos/{owner}/{repo}/pulls/comments/{comment_id}",
    "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}",
    "/repos/{owner}/{repo}/pulls/{pull_number}/files",
]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Fields that githubkit-schemas 26.10.21 (generated from a newer description,
# github/rest-api-description@755ee33) requires but this description lacks.
# Responses and webhooks must parse with those models too, so the fields are
# added here, marked ``x-emulator-added``. Found by comparing required fields
# with githubkit's models (and by the emulator's tests); re-check when either
# side is updated. Each entry: (which object schemas, properties to add).
LABEL_KEYS = {"id", "node_id", "url", "name", "color", "default"}
DRIFT = [
    (
        "labels (REST and webhook bodies)",
        lambda schema: set(schema.get("properties", {})) >= LABEL_KEYS,
        {
            "archived_at": {
                "type": "string",
                "format": "date-time",
                "nullable": True,
                "description": "When the label was archived (null: not archived).",
            },
            "archived_by": {
                "type": "object",
                "nullable": True,
                "description": "Who archived the label (null: not archived).",
            },
        },
    ),
]


def _apply_drift(node, seen: set[int] | None = None) -> int:
    """Add the DRIFT properties (as required) to every matching object schema."""
    count = 0
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            for _, matches, props in DRIFT:
                if matches(node):
                    for name, sub in props.items():
                        if name not in node["properties"]:
                            node["properties"][name] = {**copy.deepcopy(sub), "x-emulator-added": True}
                            count += 1
                        if name not in node.setdefault("required", []):
                            node["required"].append(name)
        for value in node.values():
            count += _apply_drift(value)
    elif isinstance(node, list):
        for value in node:
            count += _apply_drift(value)
    return count


def _refs(node, found: set[str]) -> None:
    """Collect every ``$ref`` target under ``node``."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _strip_examples(node):
    """Drop ``example``/``examples`` of media types and parameters (not of schemas:
    a schema's ``example`` is one short value and documents the property)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "examples" and isinstance(value, dict):
                continue
            out[key] = _strip_examples(value)
        if "schema" in out and "example" in out:  # media type / parameter example
            del out["example"]
        return out
    if isinstance(node, list):
        return [_strip_examples(v) for v in node]
    return node


def _lookup(doc: dict, ref: str):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def build(shared: Path) -> dict:
    subset = json.loads((shared / "openapi" / "api.github.com.subset.json").read_text())
    full = json.loads((shared / "openapi" / "api.github.com.json").read_text())

    out = copy.deepcopy(subset)
    out.pop("tags", None)
    for path in EXTRA_PATHS:
        if path in out["paths"]:
            continue
        item = copy.deepcopy(full["paths"][path])
        for method in HTTP_METHODS:
            if method in item:
                item[method].pop("x-octokit", None)
        out["paths"][path] = item
    out["paths"] = dict(sorted(out["paths"].items()))

    # Pull in missing components until closed under $ref, then keep only the
    # referenced ones.
    components = out.setdefault("components", {})
    components.pop("examples", None)
    out = _strip_examples(out)
    components = out["components"]
    while True:
        found: set[str] = set()
        _refs({"paths": out["paths"], "x-webhooks": out["x-webhooks"], "components": components}, found)
        missing = False
        for ref in sorted(found):
            _, _, kind, name = ref.split("/", 3)
            if name not in components.get(kind, {}):
                components.setdefault(kind, {})[name] = _strip_examples(copy.deepcopy(_lookup(full, ref)))
                missing = True
        if not missing:
            break
    reachable: set[str] = set()
    frontier: set[str] = set()
    _refs({"paths": out["paths"], "x-webhooks": out["x-webhooks"]}, frontier)
    while frontier:
        ref = frontier.pop()
        if ref in reachable:
            continue
        reachable.add(ref)
        _refs(_lookup(out, ref), frontier)
    for kind in list(components):
        for name in list(components[kind]):
            if f"#/components/{kind}/{name}" not in reachable:
                del components[kind][name]
        components[kind] = dict(sorted(components[kind].items()))
        if not components[kind]:
            del components[kind]

    added = _apply_drift(out)

    info = out["info"]
    info["x-github-emulator"] = {
        "note": "Generated by tandem/sandbox/github/make_spec.py; do not edit by hand.",
        "from": [
            "shared/github/openapi/api.github.com.subset.json",
            "shared/github/openapi/api.github.com.json (extra paths)",
        ],
        "extra-paths": EXTRA_PATHS,
        "drift-added": {what: sorted(props) for what, _, props in DRIFT},
    }
    out["info"]["x-github-emulator"]["drift-properties-added"] = added
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=DEFAULT_SHARED, help="the shared/github folder (default: %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    spec = build(args.shared)
    # One value a line keeps diffs of regenerated specs readable (`zdiff`); compressed, because the
    # package ships it (3 MB of JSON); mtime 0, so the same input gives the same bytes.
    text = json.dumps(spec, ensure_ascii=False, indent=1, separators=(",", ": "))
    args.out.write_bytes(gzip.compress((text + "\n").encode("utf-8"), compresslevel=9, mtime=0))
    print(
        f"wrote {args.out} ({len(text) // 1024} KiB, {len(spec['paths'])} paths, "
        f"{len(spec['components']['schemas'])} schemas)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
