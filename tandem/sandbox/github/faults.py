"""Fault injection: make the next N matching API requests fail the way GitHub does.

Rules are checked in the order they were added; the first rule that matches a
request and still has uses left answers it (before authentication and before
any state changes, so a failed request has no effect, as with a GitHub 5xx
from the edge). ``latency`` delays every response until cleared; ``slow_requests``
delays matching requests on their way in.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus

SECONDARY_DOCS = (
    "https://docs.github.com/free-pro-team@latest/rest/overview/"
    "rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
PRIMARY_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-rate-limits"


@dataclass
class FaultRule:
    kind: str  # "status" | "secondary" | "too_many" | "primary" | "slow"
    times: int
    method: str | None = None
    path_contains: str | None = None
    status: int = 502
    retry_after: int = 1
    reset_in: int = 2
    delay: float = 0.0
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times <= 0:
            return False
        if self.method and self.method.upper() != method:
            return False
        return not (self.path_contains and self.path_contains not in path)


@dataclass
class FaultResponse:
    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)
    # for the primary limit the rate-limit headers are overridden
    ratelimit_remaining: int | None = None
    ratelimit_reset: int | None = None


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._latency = 0.0

    # ------------------------------------------------------------------ public API

    def fail(
        self, status: int = 502, times: int = 3, method: str | None = None, path_contains: str | None = None
    ) -> FaultRule:
        """The next ``times`` matching requests answer ``status`` (a 5xx usually)."""
        return self._add(FaultRule("status", times, method, path_contains, status=status))

    def secondary_rate_limit(
        self, times: int = 1, retry_after: int = 1, method: str | None = None, path_contains: str | None = None
    ) -> FaultRule:
        """403 "You have exceeded a secondary rate limit" with ``Retry-After``."""
        return self._add(FaultRule("secondary", times, method, path_contains, retry_after=retry_after))

    def too_many_requests(
        self, times: int = 1, retry_after: int = 1, method: str | None = None, path_contains: str | None = None
    ) -> FaultRule:
        """429 with ``Retry-After`` (GitHub's other secondary-limit answer)."""
        return self._add(FaultRule("too_many", times, method, path_contains, retry_after=retry_after))

    def primary_rate_limit(
        self, times: int = 1, reset_in: int = 2, method: str | None = None, path_contains: str | None = None
    ) -> FaultRule:
        """403 "API rate limit exceeded" with ``x-ratelimit-remaining: 0`` and
        ``x-ratelimit-reset`` ``reset_in`` seconds from now."""
        return self._add(FaultRule("primary", times, method, path_contains, reset_in=reset_in))

    def slow_requests(
        self, seconds: float, times: int = 1, method: str | None = None, path_contains: str | None = None
    ) -> FaultRule:
        """The next ``times`` matching requests take ``seconds`` longer to reach GitHub (a slow
        connection): GitHub sees them, and counts them toward its limits, that much later."""
        return self._add(FaultRule("slow", times, method, path_contains, delay=seconds))

    def latency(self, seconds: float) -> None:
        """Delay every response by ``seconds`` until cleared (0 clears)."""
        with self._lock:
            self._latency = max(0.0, float(seconds))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._latency = 0.0

    @property
    def delay(self) -> float:
        return self._latency

    @property
    def pending(self) -> int:
        """How many injected failures are still to be served."""
        with self._lock:
            return sum(max(0, r.times) for r in self._rules)

    # ------------------------------------------------------------------ server side

    def _add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def _consume(self, method: str, path: str, slow: bool) -> FaultRule | None:
        with self._lock:
            rule = next((r for r in self._rules if (r.kind == "slow") == slow and r.matches(method, path)), None)
            if rule is not None:
                rule.times -= 1
                rule.hits += 1
                if rule.times <= 0:
                    self._rules.remove(rule)
            return rule

    def arrival_delay(self, method: str, path: str) -> float:
        """How much later than sent this request reaches GitHub (a "slow" rule's use)."""
        rule = self._consume(method, path, slow=True)
        return rule.delay if rule else 0.0

    def take(self, method: str, path: str, request_id: str, who: str) -> FaultResponse | None:
        """Consume one use of the first matching rule and build its response."""
        rule = self._consume(method, path, slow=False)
        if rule is None:
            return None
        if rule.kind == "status":
            return FaultResponse(
                rule.status,
                {
                    "message": "Server Error" if rule.status == 500 else HTTPStatus(rule.status).phrase,
                    "documentation_url": "https://docs.github.com/rest",
                    "status": str(rule.status),
                },
            )
        if rule.kind in ("secondary", "too_many"):
            status = 403 if rule.kind == "secondary" else 429
            return FaultResponse(
                status,
                {"message": secondary_message(request_id), "documentation_url": SECONDARY_DOCS, "status": str(status)},
                headers={"retry-after": str(rule.retry_after)},
            )
        reset = int(time.time()) + rule.reset_in
        return FaultResponse(
            403,
            {
                "message": f"API rate limit exceeded for {who}. If you reach out to GitHub Support "
                f"for help, please include the request ID {request_id}.",
                "documentation_url": PRIMARY_DOCS,
                "status": "403",
            },
            ratelimit_remaining=0,
            ratelimit_reset=reset,
        )


def secondary_message(request_id: str) -> str:
    return (
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
        f"again. If you reach out to GitHub Support for help, please include the request ID {request_id}."
    )
