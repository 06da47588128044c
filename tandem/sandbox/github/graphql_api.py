"""`POST /graphql`: the part of GitHub's GraphQL API that Tandem asks, reading files.

The schema below is a subset of GitHub's public schema, with its names and types (docs.github.com/graphql:
`Query.repository`, `Repository.object`, `Blob`, `Tree`, `Commit`), executed by graphql-core. As on
GitHub, the answer is 200 with `errors` beside the `data` it could give: a repository the caller
cannot see is `null` with a `NOT_FOUND` error, a file it lacks the permission to read `null` with
`FORBIDDEN`. A query reads nothing that a REST read would not, and is no write.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import graphql

from .auth import AuthInfo
from .errors import ApiError

if TYPE_CHECKING:
    from .core import Core

SCHEMA = """
scalar GitObjectID

type Query {
  repository(owner: String!, name: String!, followRenames: Boolean = true): Repository
}

type Repository {
  nameWithOwner: String!
  object(expression: String, oid: GitObjectID): GitObject
}

interface GitObject {
  oid: GitObjectID!
}

type Blob implements GitObject {
  oid: GitObjectID!
  byteSize: Int!
  isBinary: Boolean
  isTruncated: Boolean!
  text: String
}

type Tree implements GitObject {
  oid: GitObjectID!
}

type Commit implements GitObject {
  oid: GitObjectID!
}
"""


class _Failure(graphql.GraphQLError):
    """An error GitHub reports with a `type` (NOT_FOUND, FORBIDDEN) beside its message."""

    def __init__(self, kind: str, message: str):
        super().__init__(message, extensions={"type": kind})


@functools.cache
def _schema() -> graphql.GraphQLSchema:
    schema = graphql.build_schema(SCHEMA)
    schema.query_type.fields["repository"].resolve = _repository  # type: ignore[union-attr]
    schema.get_type("Repository").fields["object"].resolve = _object  # type: ignore[union-attr]
    blob = schema.get_type("Blob")
    for name, resolve in (
        ("byteSize", lambda obj, info: len(obj["data"])),
        ("isBinary", lambda obj, info: obj["text"] is None),
        ("isTruncated", lambda obj, info: False),
        ("text", lambda obj, info: obj["text"]),
    ):
        blob.fields[name].resolve = resolve  # type: ignore[union-attr]
    schema.get_type("GitObject").resolve_type = lambda obj, info, kind: obj["typename"]  # type: ignore[union-attr]
    return schema


def _repository(_root: None, info: graphql.GraphQLResolveInfo, owner: str, name: str, **_: Any) -> dict | None:
    core: Core = info.context["core"]
    auth: AuthInfo = info.context["auth"]
    repo = core.state.repo(owner, name)
    if repo is None or not auth.can_read(repo):
        raise _Failure("NOT_FOUND", f"Could not resolve to a Repository with the name '{owner}/{name}'.")
    return {"repo": repo, "nameWithOwner": repo.full_name}


def _object(parent: dict, info: graphql.GraphQLResolveInfo, expression: str | None = None, oid: str | None = None):
    """A `rev-parse` expression: `<rev>` or `<rev>:<path>`, where HEAD is the default branch."""
    repo, auth = parent["repo"], info.context["auth"]
    if repo.private and auth.permission("contents") not in ("read", "write"):
        raise _Failure("FORBIDDEN", "Resource not accessible by integration")
    rev, _, path = (expression or oid or "").partition(":")
    commit = repo.git.resolve(repo.default_branch if rev in ("", "HEAD") else rev)
    if commit is None:
        return None
    if not path:
        return {"typename": "Commit", "oid": commit}
    entry = repo.git.entry_at(commit, path)
    if entry is None:
        return None
    if entry.type != "blob":
        return {"typename": "Tree" if entry.type == "tree" else "Commit", "oid": entry.sha}
    data = repo.git.read_blob(entry.sha)
    try:
        text = None if b"\0" in data else data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {"typename": "Blob", "oid": entry.sha, "data": data, "text": text}


def answer(core: Core, auth: AuthInfo, body: Any) -> dict:
    """The response body for a request's JSON body, as GitHub shapes it."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise ApiError(400, "Problems parsing JSON")
    variables = body.get("variables")
    result = graphql.graphql_sync(
        _schema(),
        body["query"],
        variable_values=variables if isinstance(variables, dict) else None,
        context_value={"core": core, "auth": auth},
    )
    answer: dict[str, Any] = {}
    if result.data is not None:
        answer["data"] = result.data
    if result.errors:
        answer["errors"] = [_error(error) for error in result.errors]
    return answer


def _error(error: graphql.GraphQLError) -> dict:
    formatted: dict[str, Any] = dict(error.formatted)
    kind = (formatted.pop("extensions", None) or {}).get("type")
    return {"type": kind, **formatted} if kind else formatted
