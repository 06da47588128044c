"""The emulator's engine: every part wired together, and the REST pipeline.

``Core.handle_api`` takes one HTTP request and answers it as GitHub would:

1. injected faults (``faults.py``) answer first, before anything changes;
2. the path is matched against the OpenAPI description of the requested API
   version (``X-GitHub-Api-Version``; GitHub's default is 2022-11-28);
3. authentication (JWT for ``/app/...``, installation tokens elsewhere);
4. the secondary rate limits of the caller, when enforced (``secondary.py``),
   and its primary rate limit;
5. the installation's permissions for the operation;
6. the JSON body against the operation's request schema (422 like GitHub);
7. the handler (``handlers/``), whose values are rendered through the
   operation's response schema (``render.py``);
8. GitHub's response headers, and a ``RecordedRequest``.

Handlers run on the server's worker threads; ``State.lock`` keeps them safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jsonschema

from . import graphql_api, oas
from . import handlers as _handlers  # noqa: F401  (registers the handlers)
from . import spec as spec_module
from .api import HANDLERS, Ctx, Reply
from .auth import ANONYMOUS, Authenticator, AuthInfo, accepted_permissions_header, classify, has_permission
from .domain import Domain
from .errors import ApiError
from .faults import PRIMARY_DOCS, SECONDARY_DOCS, Faults, secondary_message
from .manifests import Manifests
from .ratelimit import RateLimits
from .render import Renderer
from .secondary import SecondaryLimiter, SecondaryLimits
from .state import State
from .util import iso
from .views import Views
from .webhooks import Dispatcher

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Operations authenticated as the app itself (JWT), per GitHub's docs.
APP_OPERATIONS = {
    "apps/get-authenticated",
    "apps/list-installations",
    "apps/get-installation",
    "apps/delete-installation",
    "apps/create-installation-access-token",
    "apps/suspend-installation",
    "apps/unsuspend-installation",
    "apps/list-webhook-deliveries",
    "apps/get-webhook-delivery",
    "apps/redeliver-webhook-delivery",
    "apps/get-repo-installation",
}
NO_AUTH_OPERATIONS = {"apps/create-from-manifest"}


@dataclass
class Request:
    method: str
    path: str  # raw (percent-encoded) path, without the query string
    query_string: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class RecordedRequest:
    """One API request as the emulator received and answered it."""

    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    json: Any
    status: int
    token_kind: str  # "jwt" | "installation" | "none"
    installation_id: int | None
    operation_id: str | None = None
    request_id: str = ""
    duration: float = 0.0
    at: float = 0.0  # when it was received (time.time())
    response_headers: dict = field(default_factory=dict)


@dataclass
class _Trace:
    """What the pipeline learned about a request, for its record."""

    request_id: str
    query: dict
    token_kind: str = "none"
    auth: AuthInfo | None = None
    operation_id: str | None = None
    rate: dict | None = None
    json: Any = None


def _request_id() -> str:
    return ":".join(secrets.token_hex(n).upper() for n in (2, 2, 4, 4, 4))


class Core:
    def __init__(
        self,
        root: Path,
        base_url: str,
        *,
        installation_rate_limit: int = 5000,
        webhook_timeout: float = 10.0,
        cache_headers: bool = True,
        secondary_limits: SecondaryLimits | None = None,
    ):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.base_url = base_url.rstrip("/")
        self.cache_headers = cache_headers
        self.state = State()
        self.specs = {v: spec_module.load(v) for v in spec_module.VERSIONS}
        self.renderer = Renderer(self.base_url, iso)
        self.views = Views(self.base_url, self.state)
        self.dispatcher = Dispatcher(
            self.state, self.specs[spec_module.DEFAULT_VERSION], self.renderer, timeout=webhook_timeout
        )
        self.url_file = self.root / ".github-emulator-url"
        self.domain = Domain(self.state, self.views, self.dispatcher, self.root, self.url_file)
        self.auth = Authenticator(self.state)
        self.faults = Faults()
        self.limits = RateLimits(installation_limit=installation_rate_limit)
        self.secondary = SecondaryLimiter(secondary_limits) if secondary_limits else None
        self.manifests = Manifests(self)
        from .oauth import OAuth  # (oauth imports this module's Request and Response)

        self.oauth = OAuth()
        self._requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._writes: dict[int, int] = {}
        self._validators: dict[int, jsonschema.Draft4Validator] = {}

    # ------------------------------------------------------------------ records

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._requests_lock:
            return list(self._requests)

    def reset_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()
            self._writes.clear()

    def write_count(self, installation_id: int) -> int:
        with self._requests_lock:
            return self._writes.get(installation_id, 0)

    @staticmethod
    def identity(auth: AuthInfo) -> tuple:
        if auth.kind == "installation":
            return ("installation", auth.installation_required.id)
        if auth.kind == "jwt":
            return ("app", auth.app_required.id)
        return ("anonymous",)

    # ------------------------------------------------------------------ pipeline

    def handle_api(self, req: Request) -> Response:
        time.sleep(self.faults.arrival_delay(req.method, req.path))
        started, received = time.monotonic(), time.time()
        trace = _Trace(request_id=_request_id(), query=dict(parse_qsl(req.query_string, keep_blank_values=True)))
        kind, _ = classify(req.headers.get("authorization"))
        trace.token_kind = "installation" if kind == "token" else kind
        try:
            trace.auth = self.auth.authenticate(req.headers.get("authorization"))
        except ApiError:
            trace.auth = None  # answered 401 below, unless a fault answers first
        version = req.headers.get("x-github-api-version") or spec_module.DEFAULT_VERSION
        headers = {
            "content-type": "application/json; charset=utf-8",
            "x-github-api-version-selected": version,
            "x-github-media-type": "github.v3; format=json",
            "x-github-request-id": trace.request_id,
            "x-content-type-options": "nosniff",
            "server": "github.com",
        }
        if req.body:
            with contextlib.suppress(ValueError):
                trace.json = json.loads(req.body)
        try:
            response = self._answer(req, version, headers, trace)
            if self.cache_headers:
                response = self._cache_headers(req, response, trace)
        except ApiError as err:
            headers.update(err.headers)
            response = Response(err.status, headers, _dump(err.body()))
        rate = trace.rate or self.limits.snapshot(self.identity(trace.auth or ANONYMOUS))
        for name in ("limit", "remaining", "reset", "used"):
            response.headers.setdefault(f"x-ratelimit-{name}", str(rate[name]))
        response.headers.setdefault("x-ratelimit-resource", "core")
        record = RecordedRequest(
            method=req.method,
            path=req.path,
            query=trace.query,
            headers=dict(req.headers),
            body=req.body,
            json=trace.json,
            status=response.status,
            token_kind=trace.token_kind,
            installation_id=trace.auth.installation_id if trace.auth else None,
            operation_id=trace.operation_id,
            request_id=trace.request_id,
            duration=time.monotonic() - started,
            at=received,
            response_headers=dict(response.headers),
        )
        with self._requests_lock:
            self._requests.append(record)
            if req.method in MUTATING and record.installation_id is not None and record.operation_id != "graphql":
                self._writes[record.installation_id] = self._writes.get(record.installation_id, 0) + 1
        return response

    def _answer(self, req: Request, version: str, headers: dict[str, str], trace: _Trace) -> Response:
        fault = self.faults.take(
            req.method, req.path, trace.request_id, _who(trace.auth) if trace.auth else "127.0.0.1"
        )
        if fault is not None:
            if fault.ratelimit_remaining is not None:
                rate = self.limits.snapshot(self.identity(trace.auth or ANONYMOUS))
                headers.update(
                    {
                        "x-ratelimit-limit": str(rate["limit"]),
                        "x-ratelimit-remaining": "0",
                        "x-ratelimit-reset": str(fault.ratelimit_reset),
                        "x-ratelimit-used": str(rate["limit"]),
                    }
                )
            headers.update(fault.headers)
            return Response(fault.status, headers, _dump(fault.body))
        if req.path == "/graphql" and req.method == "POST":
            return self._graphql(req, headers, trace)
        if version not in self.specs:
            raise ApiError(
                400,
                f"Unsupported 'X-GitHub-Api-Version' provided: {version!r}. "
                f"Supported versions: {', '.join(spec_module.VERSIONS)}.",
            )
        op, params, _ = self.specs[version].match(req.method, req.path)
        if op is None or op.operation_id not in HANDLERS:
            raise ApiError(404, "Not Found")
        trace.operation_id = op.operation_id
        try:
            auth = trace.auth = self._authorize(req, op.operation_id, trace.auth)
            identity = self.identity(auth)
            if op.operation_id == "rate-limit/get":  # does not count against the limits
                trace.rate = self.limits.snapshot(identity)
            else:
                self._spend(trace, auth, identity, write=req.method in MUTATING)
            permission_header = accepted_permissions_header(op.operation_id)
            if permission_header:
                headers["x-accepted-github-permissions"] = permission_header
            if not has_permission(auth, op.operation_id):
                raise ApiError(403, "Resource not accessible by integration")
            trace.json = self._parse_body(req, op)
            ctx = Ctx(
                core=self,
                op=op,
                method=req.method,
                path=req.path,
                params=params,
                query=trace.query,
                headers=req.headers,
                body=req.body,
                json=trace.json,
                auth=auth,
                version=version,
            )
            reply = HANDLERS[op.operation_id](ctx)
        except ApiError as err:
            if err.docs is None:
                err.docs = op.docs_url
            raise
        return self._reply(op, reply, headers)

    def _graphql(self, req: Request, headers: dict[str, str], trace: _Trace) -> Response:
        """GitHub's GraphQL API (graphql_api): its own rate limit, and a query is never a write."""
        trace.operation_id = "graphql"
        auth = trace.auth = self._authorize(req, trace.operation_id, trace.auth)  # (a JWT: 403)
        if auth.kind == "none":
            raise ApiError(401, "This endpoint requires you to be authenticated.")
        headers["x-ratelimit-resource"] = "graphql"
        self._spend(trace, auth, ("graphql", *self.identity(auth)), write=False)
        return Response(200, headers, _dump(graphql_api.answer(self, auth, trace.json)))

    def _spend(self, trace: _Trace, auth: AuthInfo, bucket: tuple, *, write: bool) -> None:
        """Count one request against the caller's limits: the secondary (per caller, writes
        weighing more), then the primary of ``bucket`` (REST's, or GraphQL's own)."""
        wait = self.secondary.admit(self.identity(auth), write) if self.secondary else None
        if wait is not None:
            raise ApiError(
                403, secondary_message(trace.request_id), docs=SECONDARY_DOCS, headers={"retry-after": str(wait)}
            )
        allowed, trace.rate = self.limits.hit(bucket)
        if not allowed:
            raise ApiError(403, f"API rate limit exceeded for {_who(auth)}.", docs=PRIMARY_DOCS)

    # ------------------------------------------------------------------ steps

    def _authorize(self, req: Request, operation_id: str, auth: AuthInfo | None) -> AuthInfo:
        if operation_id in NO_AUTH_OPERATIONS:
            return ANONYMOUS
        if auth is None:  # bad credentials: authenticate again to raise GitHub's 401
            auth = self.auth.authenticate(req.headers.get("authorization"))
        if operation_id in APP_OPERATIONS:
            if auth.kind != "jwt":
                raise ApiError(401, "A JSON web token could not be decoded")
        elif auth.kind == "jwt":
            raise ApiError(403, "Resource not accessible by integration")
        if auth.kind == "installation" and auth.installation_required.suspended_at:
            raise ApiError(403, "This installation has been suspended")
        return auth

    def _parse_body(self, req: Request, op) -> Any:
        if req.method not in MUTATING or not req.body.strip():
            return None
        try:
            body = json.loads(req.body)
        except ValueError:
            raise ApiError(400, "Problems parsing JSON") from None
        schema = op.request_schema()
        if schema is not None:
            validator = self._validators.get(id(schema))
            if validator is None:
                validator = self._validators[id(schema)] = jsonschema.Draft4Validator(oas.convert(schema))
            error = jsonschema.exceptions.best_match(validator.iter_errors(body))
            if error is not None:
                raise ApiError(422, "Invalid request.\n\n" + _describe(error))
        return body

    def _reply(self, op, reply: Reply, headers: dict[str, str]) -> Response:
        headers.update(reply.headers)
        if reply.raw is not None:
            headers["content-type"] = reply.content_type or "application/octet-stream"
            return Response(reply.status, headers, reply.raw)
        if reply.status == 204 or (reply.value is None and op.response_schema(reply.status) is None):
            headers.pop("content-type", None)
            return Response(reply.status, headers, b"")
        schema = op.response_schema(reply.status)
        value = self.renderer.render(schema, reply.value)
        return Response(reply.status, headers, _dump(value))

    def _cache_headers(self, req: Request, response: Response, trace: _Trace) -> Response:
        """GitHub's HTTP caching: GETs carry an ``ETag`` and
        ``Cache-Control: private, max-age=60``; a matching ``If-None-Match``
        answers 304, which does not count against the rate limit."""
        if req.method != "GET" or response.status != 200:
            return response
        etag = 'W/"' + hashlib.sha256(response.body).hexdigest() + '"'
        response.headers["etag"] = etag
        response.headers["cache-control"] = "private, max-age=60, s-maxage=60"
        response.headers["vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
        match = req.headers.get("if-none-match")
        if match and etag in [m.strip() for m in match.split(",")]:
            if trace.rate is not None and trace.auth is not None:
                trace.rate = self.limits.refund(self.identity(trace.auth))
            response.status = 304
            response.body = b""
            response.headers.pop("content-type", None)
        return response


def _who(auth: AuthInfo) -> str:
    if auth.kind == "installation":
        return f"installation ID {auth.installation_required.id}"
    if auth.kind == "jwt":
        return f"integration ID {auth.app_required.id}"
    return "127.0.0.1"


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _describe(error: jsonschema.ValidationError) -> str:
    """GitHub's wording for a request that does not match the schema."""
    where = "/".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f'"{missing}" wasn\'t supplied.'
    if error.validator == "type":
        return f"For 'properties/{where}', {json.dumps(error.instance)} is not {_article(error.validator_value)}."
    if error.validator == "enum":
        return f"For 'properties/{where}', {json.dumps(error.instance)} is not a member of {error.validator_value}."
    if error.validator == "additionalProperties":
        return f"{error.message}."
    if error.validator in ("oneOf", "anyOf"):
        return f'No subschema in "{error.validator}" matched.' + (f" (at '{where}')" if where else "")
    return f"For 'properties/{where}', {error.message}."


def _article(type_name) -> str:
    if isinstance(type_name, list):
        return " or ".join(_article(t) for t in type_name)
    return ("an " if str(type_name)[0] in "aeiou" else "a ") + str(type_name)
